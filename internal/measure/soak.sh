#!/usr/bin/env bash
# Soaks the production mode as an operator runs it: the built binary against
# the Pub/Sub emulator and cbtemulator (started from the gcloud SDK on free
# loopback ports), `bqobserver setup`, then `bqobserver run` with enrichment
# polling the jobs API of `bqobserver simulate`, watched from outside through
# /metrics, the summary API and /proc.
#
#   go build -o /tmp/bqobserver ./cmd/bqobserver
#   internal/measure/soak.sh /tmp/bqobserver 7200 60 /tmp/soak
#   internal/measure/soak.sh /tmp/bqobserver 600 30 /tmp/soak-short -- --rate 20
#
# Arguments: the binary, how long to run (s), the sampling period (s), a
# directory for the samples, the logs and the heap profiles (taken after 10,
# 20 and 60 minutes and at the end), then optionally `--` and flags for
# `bqobserver simulate` (default: --rate 50). The Pub/Sub emulator keeps every
# message ever published, so it gets a heap of SOAK_PUBSUB_HEAP (default 13g,
# enough for two hours at 50 jobs/s). It prints one Markdown row per sample:
#
#   t (s), the service's RSS and Go heap in use (MB), entries received and
#   appended, ingest's oldest unprocessed entry (s), the lag the summary
#   shows (s), jobs listed, the service's CPU (s), the machine's load average
#   over one minute, and the RSS of the Pub/Sub emulator, cbtemulator and
#   simulate (MB).
set -euo pipefail
if [[ $# -lt 4 || ($# -gt 4 && $5 != "--") ]]; then
	sed -n '2,24p' "$0" >&2
	exit 2
fi
bin=$1 duration=$2 period=$3 dir=$4
shift 4
[[ $# -gt 0 ]] && shift
sim_flags=("$@")
((${#sim_flags[@]})) || sim_flags=(--rate 50)
mkdir -p "$dir"
sdk=$(gcloud info --format='value(installation.sdk_root)')
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ps_port=$(port) bt_port=$(port) http_port=$(port) api_port=$(port)
base=http://127.0.0.1:$http_port
pids=()
stop() {
	for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT
started() { # runs its arguments in a process group of their own, logging to $dir/$1.log
	local name=$1
	shift
	setsid "$@" >"$dir/$name.log" 2>&1 &
	pids+=($!)
}
wait_port() {
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.2
	done
	echo "nothing listens on 127.0.0.1:$1; see $dir/$2.log" >&2
	exit 1
}
rss() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || printf -- "-"; }
group_rss() { # the RSS of the largest process of a process group
	local max=0 r
	for p in $(pgrep -g "$1" 2>/dev/null); do
		r=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$p/status" 2>/dev/null || echo 0)
		((r > max)) && max=$r
	done
	printf "%s" "$max"
}

JAVA_OPTS="-Xmx${SOAK_PUBSUB_HEAP:-13g}" started pubsub "$sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator" \
	--host=127.0.0.1 --port="$ps_port"
ps_pid=${pids[-1]}
started cbtemulator "$sdk/platform/bigtable-emulator/cbtemulator" -host 127.0.0.1 -port "$bt_port"
bt_pid=${pids[-1]}
wait_port "$ps_port" pubsub
wait_port "$bt_port" cbtemulator
export PUBSUB_EMULATOR_HOST=127.0.0.1:$ps_port BIGTABLE_EMULATOR_HOST=127.0.0.1:$bt_port
common=(--project soak --bigtable-instance soak)
"$bin" setup "${common[@]}" >"$dir/setup.log" 2>&1
started run "$bin" run "${common[@]}" --http-addr "127.0.0.1:$http_port" --pprof \
	--bigquery-endpoint "http://127.0.0.1:$api_port/bigquery/v2/"
run_pid=${pids[-1]}
wait_port "$http_port" run
started simulate "$bin" simulate "${common[@]}" --api-addr "127.0.0.1:$api_port" "${sim_flags[@]}"
sim_pid=${pids[-1]}

# shellcheck source=sample.sh
. "$(dirname "$0")/sample.sh"

echo "| t (s) | RSS (MB) | heap (MB) | received | appended | ingest oldest (s) | lag shown (s) | listed | CPU (s) | load | Pub/Sub emulator (MB) | cbtemulator (MB) | simulate (MB) |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
start=$(date +%s)
for at in 600 1200 3600; do profiled[$at]=0; done
while :; do
	sleep "$period"
	t=$(($(date +%s) - start))
	if ! kill -0 "$run_pid" 2>/dev/null; then
		echo "the service ended; its log: $dir/run.log" >&2
		exit 1
	fi
	scrape
	echo "| $t | $(rss "$run_pid") | $heap | $(metric bqobserver_ingest_received_total) |" \
		"$(metric bqobserver_ingest_appended_total) |" \
		"$(metric bqobserver_handler_oldest_unprocessed_seconds 'handler="ingest-audit"') | $lag | $listed |" \
		"$(metric 'process_cpu_seconds_total ') | $(cut -d' ' -f1 /proc/loadavg) |" \
		"$(group_rss "$ps_pid") | $(group_rss "$bt_pid") | $(group_rss "$sim_pid") |"
	for at in 600 1200 3600; do
		if ((profiled[at] == 0 && t >= at)); then
			curl -sf -o "$dir/heap-$((at / 60))m.pb.gz" "$base/debug/pprof/heap" && profiled[at]=1
		fi
	done
	((t >= duration)) && break
done
curl -sf -o "$dir/heap-end.pb.gz" "$base/debug/pprof/heap" || true
curl -sf -o "$dir/metrics-end.txt" "$base/metrics" || true
echo "samples, logs and heap profiles: $dir (go tool pprof -diff_base $dir/heap-20m.pb.gz $bin $dir/heap-end.pb.gz)" >&2
