#!/usr/bin/env bash
# HTTP/2 load (h2load, ALPN h2, as kube-apiserver speaks) while HOSTILE
# connections are held open by stalling clients that reconnect as soon as the
# server closes them (hostile.py --reconnect, MODE body by default: 4 MiB
# declared, all but a byte sent). Reports the server's RSS, requests answered
# and latency percentiles from h2load's per-request log.
#
#   scripts/reliability/h2-load.sh [REQUESTS=20000] [HOSTILE=100] [MODE=body]
source "$(dirname "$0")/lib.sh"
REQUESTS="${1:-20000}"
HOSTILE="${2:-100}"
MODE="${3:-body}"
command -v h2load >/dev/null || { echo "missing tool: h2load (apt-get install -y nghttp2-client)" >&2; exit 1; }
machine
start_offline_serve h2-load
URL="https://127.0.0.1:$PORT/mutate?timeout=10s"

percentiles() { # h2load --log-file: start(us) status duration(us)
  awk '{print $3}' "$1" | sort -n | awk '{a[NR]=$1} END {
    if (NR == 0) { print "no requests"; exit }
    printf "p50 %.1f ms, p99 %.1f ms, max %.1f ms", a[int(NR*0.50)]/1000, a[int(NR*0.99)]/1000, a[NR]/1000 }'
}
run() { # LABEL
  h2load -n "$REQUESTS" -c 8 -m 4 -d "$WORK/review.json" -H 'content-type: application/json' \
    --log-file="$WORK/h2load-$1.log" "$URL" >"$WORK/h2load-$1.out" 2>&1
  local ok; ok=$(awk '$2 == 200' "$WORK/h2load-$1.log" | wc -l)
  echo "$1: $(grep -m1 '^requests:' "$WORK/h2load-$1.out"); HTTP 200: $ok; $(percentiles "$WORK/h2load-$1.log"); $(grep -m1 'finished in' "$WORK/h2load-$1.out")"
  grep -q 'Application protocol: h2' "$WORK/h2load-$1.out" || { echo "h2load did not negotiate h2" >&2; cat "$WORK/h2load-$1.out" >&2; exit 1; }
}
sleep 1
echo "serve idle: rss $(rss_kib "$SERVE_PID") KiB"
run quiet
echo "after quiet run: rss $(rss_kib "$SERVE_PID") KiB"
python3 "$HERE/hostile.py" "$PORT" "$MODE" "$HOSTILE" 600 --reconnect --pid "$SERVE_PID" >"$WORK/hostile.out" 2>&1 &
HOSTILE_PID=$!; PIDS+=("$HOSTILE_PID")
# Until every hostile client has connected once.
until grep -q "connected=$HOSTILE\|connected=[0-9]\{4,\}" "$WORK/hostile.out" 2>/dev/null \
  || [ "$(grep -o 'connected=[0-9]*' "$WORK/hostile.out" | tail -1 | cut -d= -f2)" -ge "$HOSTILE" ] 2>/dev/null; do sleep 0.5; done
echo "with $HOSTILE hostile ($MODE) connections: rss $(rss_kib "$SERVE_PID") KiB"
run hostile
echo "during/after hostile run: rss $(rss_kib "$SERVE_PID") KiB, peak $(hwm_kib "$SERVE_PID") KiB; hostile: $(tail -1 "$WORK/hostile.out")"
kill "$HOSTILE_PID" 2>/dev/null || true
