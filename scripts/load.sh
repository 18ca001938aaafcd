#!/usr/bin/env bash
# Load test of the webhook next to a constant-answer server (not run by CI;
# prints numbers, fails only when an answer is wrong).
#
# examples/loadgen.rs sends REQUESTS Pod CREATE reviews (each with a fresh
# uid) over CONNS keep-alive TLS connections and checks every answer: to
# `entrypoint-guard serve` (offline image facts for the fixture's images, so
# every answer must carry a JSONPatch) and to examples/constant_server.rs
# (same axum + axum-server + rustls stack and certificate, answering the
# webhook's own answer bytes without doing any work). Both at full load, then
# both at half the webhook's measured rate (paced; latency counted from each
# request's scheduled time). Peak RSS of serve is its VmHWM.
#
#   scripts/load.sh      # REQUESTS=1000000 CONNS=64 LOG_LEVEL=info HALF_REQUESTS=REQUESTS/4
#
# BIN_DIR=path uses already-built binaries (entrypoint-guard, examples/; LOADGEN=path for another loadgen)
# instead of building release ones. Needs curl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS=${REQUESTS:-1000000}
CONNS=${CONNS:-64}
HALF_REQUESTS=${HALF_REQUESTS:-$((REQUESTS / 4))}
LOG_LEVEL=${LOG_LEVEL:-info}
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
SERVE_PORT=${SERVE_PORT:-18453}
CONST_PORT=${CONST_PORT:-18454}

source scripts/load-common.sh
need_tools load curl

load_bins
load_workspace

"$bin" --log-level "$LOG_LEVEL" serve --self-signed "$tmp/certs" --images "$tmp/facts.yaml" \
  --listen "127.0.0.1:$SERVE_PORT" --health-listen off 2>"$tmp/serve.log" >/dev/null &
serve_pid=$!
pids+=("$serve_pid")

start_servers

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$serve_pid/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$serve_pid/status"; }
idle_rss=$(rss_kb)

results=()
run() { # label url check requests [rate]
  local label=$1 url=$2 check=$3 requests=$4 rate=${5:-0} echo_uid=true
  [ "$check" = allowed ] && echo_uid=false # the constant server answers the fixture's own uid
  echo "== $label: $requests requests, $CONNS connections, rate ${rate:-max}" >&2
  "$loadgen" --url "$url" --ca "$tmp/certs/ca.crt" --body "$fixture" --requests "$requests" \
    --connections "$CONNS" --rate "$rate" --check "$check" --echo-uid "$echo_uid" \
    --threads "$LOADGEN_THREADS" | tee "$tmp/out" >&2
  local line
  line=$(grep '^RESULT' "$tmp/out")
  results+=("$label $line")
}
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

echo "load: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
warm=$((CONNS * 100))
"$loadgen" --url "$serve_url" --ca "$tmp/certs/ca.crt" --body "$fixture" --requests "$warm" --connections "$CONNS" >/dev/null
"$loadgen" --url "$const_url" --ca "$tmp/certs/ca.crt" --body "$fixture" --requests "$warm" --connections "$CONNS" \
  --check allowed --echo-uid false >/dev/null

run constant-full "$const_url" allowed "$REQUESTS"
run serve-full "$serve_url" patch "$REQUESTS"
full_hwm=$(hwm_kb)
serve_rps=$(field "${results[1]}" rps)
half=$((serve_rps / 2))
run constant-half "$const_url" allowed "$HALF_REQUESTS" "$half"
run serve-half "$serve_url" patch "$HALF_REQUESTS" "$half"

echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); serve log level $LOG_LEVEL; serve RSS idle ${idle_rss} kB, peak (VmHWM) $(hwm_kb) kB (after full load ${full_hwm} kB)"
printf '%-14s %9s %8s %8s %8s %8s %9s %7s\n' run req/s p50_ms p99_ms p999_ms max_ms ok errors
for r in "${results[@]}"; do
  printf '%-14s %9s %8s %8s %8s %8s %9s %7s\n' "${r%% *}" "$(field "$r" rps)" "$(field "$r" p50_ms)" \
    "$(field "$r" p99_ms)" "$(field "$r" p999_ms)" "$(field "$r" max_ms)" "$(field "$r" ok)" "$(field "$r" errors)"
done
const_rps=$(field "${results[0]}" rps)
python3 -c "print(f'ratio serve/constant at full load: {$serve_rps / $const_rps:.3f}')"
