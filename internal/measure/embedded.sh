#!/usr/bin/env bash
# Measures the embedded mode as a newcomer runs it: the built binary, its
# in-process Pub/Sub and Bigtable and its simulated organization, watched
# from outside through /metrics, the summary API and /proc.
#
#   go build -o /tmp/bqobserver ./cmd/bqobserver
#   internal/measure/embedded.sh /tmp/bqobserver 3600 30 /tmp/embedded-50 -- --simulate-rate 50
#   internal/measure/embedded.sh /tmp/bqobserver 900 15 /tmp/embedded-500 -- --simulate-rate 500 --simulate-rate-steps 10m=50
#
# Arguments: the binary, how long to run (s), the sampling period (s), a
# directory for the samples, the service's log and heap profiles (taken
# after a third of the run and at its end), then `--` and flags for
# `bqobserver run` (which always gets --pprof and a free loopback port).
# It prints one Markdown row per sample:
#
#   t (s), RSS and Go heap in use (MB), entries the simulation handed to
#   ingest and how far it is behind real time (s), entries received, appended, skipped and dead-lettered, ingest's
#   and the live feed's oldest unprocessed entry (s), the lag the summary
#   shows (s), jobs listed (running and pending), process CPU (s), the machine's load
#   average over one minute.
set -euo pipefail
if [[ $# -lt 5 || $5 != "--" ]]; then
	sed -n '2,20p' "$0" >&2
	exit 2
fi
bin=$1 duration=$2 period=$3 dir=$4
shift 5
mkdir -p "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
"$bin" run --http-addr "127.0.0.1:$port" --pprof "$@" >"$dir/run.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT

# shellcheck source=sample.sh
. "$(dirname "$0")/sample.sh"

echo "| t (s) | RSS (MB) | heap (MB) | simulated | simulation behind (s) | received | appended | skipped | dead-lettered | ingest oldest (s) | feed oldest (s) | lag shown (s) | listed | CPU (s) | load |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
start=$(date +%s)
profiled=0
while :; do
	sleep "$period"
	t=$(($(date +%s) - start))
	if ! rss=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null); then
		echo "the service ended; its log: $dir/run.log" >&2
		exit 1
	fi
	scrape
	echo "| $t | $rss | $heap | $(metric bqobserver_simulation_entries_total) | $(metric 'bqobserver_simulation_behind_seconds ') |" \
		"$(metric bqobserver_ingest_received_total) |" \
		"$(metric bqobserver_ingest_appended_total) | $(metric bqobserver_ingest_skipped_total) | $(metric bqobserver_ingest_dead_lettered_total) |" \
		"$(metric bqobserver_handler_oldest_unprocessed_seconds 'handler="ingest-audit"') |" \
		"$(metric bqobserver_handler_oldest_unprocessed_seconds 'handler="running-jobs-live"') | $lag | $listed |" \
		"$(metric 'process_cpu_seconds_total ') | $(cut -d' ' -f1 /proc/loadavg) |"
	if ((profiled == 0 && t >= duration / 3)); then
		curl -sf -o "$dir/heap-third.pb.gz" "$base/debug/pprof/heap" && profiled=1
	fi
	((t >= duration)) && break
done
curl -sf -o "$dir/heap-end.pb.gz" "$base/debug/pprof/heap" || true
curl -sf -o "$dir/metrics-end.txt" "$base/metrics" || true
kill -TERM $pid
wait $pid || true
trap - EXIT
echo "samples, log and heap profiles: $dir (go tool pprof $bin $dir/heap-end.pb.gz)" >&2
