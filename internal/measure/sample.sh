# Sourced by embedded.sh and soak.sh: one sample of what the service at
# $base shows.

# scrape reads /metrics and the summary once, and sets metrics (the
# /metrics text, for metric), heap (the Go heap in use, MB), lag (the lag
# the summary shows, s) and listed (the jobs it lists).
scrape() {
	metrics=$(curl -sf "$base/metrics" || true)
	local summary
	summary=$(curl -sf "$base/api/v1/summary" || echo '{}')
	read -r lag listed < <(python3 -c '
import json, sys
d = json.loads(sys.argv[1])
print(round(d.get("lag", {}).get("behind_seconds", 0), 1), d.get("jobs", "-"))' "$summary")
	heap=$(awk '/^go_memstats_heap_inuse_bytes / { printf "%.0f", $2 / 1048576 }' <<<"$metrics")
}

# metric prints the sum of a metric's series in the latest scrape, or of
# the series matching a label filter; "-" when it has none.
metric() {
	awk -v name="$1" -v want="${2:-}" '
		index($0, name) == 1 && (want == "" || index($0, want) > 0) { s += $NF; n++ }
		END { if (n) printf "%.1f", s; else printf "-" }' <<<"$metrics"
}
