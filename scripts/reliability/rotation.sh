#!/usr/bin/env bash
# Certificate rotation under load: the serving cert+key are rotated every second
# the way a Kubernetes Secret volume does it (new ..vN directory, atomic ..data
# symlink swap, old version removed), alternating between two CAs, while wrk
# sends Pod CREATE reviews for SECONDS: one wrk with a TLS handshake per request
# (Connection: close), one with keep-alive, and a curl loop that verifies the
# server against both CAs. Every answer is checked (admission.lua); any failure
# fails the run.
#
#   scripts/reliability/rotation.sh [SECONDS=60] [CONNECTIONS_PER_WRK=8]
source "$(dirname "$0")/lib.sh"
DURATION="${1:-60}"
CONNS="${2:-8}"
machine

make_pair "$WORK" a
make_pair "$WORK" b
cat "$WORK/a/ca.crt" "$WORK/b/ca.crt" >"$WORK/both-cas.crt"
S="$WORK/secret"; mkdir -p "$S/..v0"
cp "$WORK/a/tls.crt" "$WORK/a/tls.key" "$S/..v0/"
ln -s ..v0 "$S/..data"; ln -s ..data/tls.crt "$S/tls.crt"; ln -s ..data/tls.key "$S/tls.key"

PORT=$(free_port); HPORT=$(free_port)
cat >"$WORK/config.yaml" <<YAML
server:
  listen: 127.0.0.1:$PORT
  healthListen: 127.0.0.1:$HPORT
  tlsCert: $S/tls.crt
  tlsKey: $S/tls.key
  certReloadInterval: 500ms
registry:
  enabled: false
imageFacts:
  registry.example/app:1.0:
    entrypoint: [/chalk, exec, --]
    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
YAML
review_body registry.example/app "$WORK/review.json"
start_serve "$WORK/config.yaml" "$WORK/serve.log"
URL="https://127.0.0.1:$PORT/mutate?timeout=10s"

rotate() {
  local n=0
  while :; do
    sleep 1
    n=$((n + 1)); local pair=a; [ $((n % 2)) = 1 ] && pair=b
    mkdir "$S/..v$n"; cp "$WORK/$pair/tls.crt" "$WORK/$pair/tls.key" "$S/..v$n/"
    ln -s "..v$n" "$S/..data_tmp"; mv -T "$S/..data_tmp" "$S/..data"
    rm -rf "$S/..v$((n - 1))"
    echo "$n" >"$WORK/rotations"
  done
}
verify() {
  local ok=0 bad=0
  while [ ! -e "$WORK/stop" ]; do
    code=$(curl -sS --cacert "$WORK/both-cas.crt" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
      --data-binary "@$WORK/review.json" "https://localhost:$PORT/mutate?timeout=10s" 2>>"$WORK/curl.err" || true)
    if [ "$code" = 200 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
    sleep 0.2
  done
  echo "VERIFIED ok=$ok failed=$bad" >"$WORK/verify.out"
}
rotate & PIDS+=($!); ROTATOR=$!
verify & VERIFIER=$!
export EG_BODY="$WORK/review.json" EG_EXPECT=patch
RSS0=$(rss_kib "$SERVE_PID")
wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s -H 'Connection: close' -s "$HERE/admission.lua" "$URL" >"$WORK/wrk-close.out" 2>&1 &
W1=$!
wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s -s "$HERE/admission.lua" "$URL" >"$WORK/wrk-keepalive.out" 2>&1
wait "$W1"
touch "$WORK/stop"; wait "$VERIFIER"; kill "$ROTATOR"
METRICS=$(curl -s "http://127.0.0.1:$HPORT/metrics")
echo "--- handshake per request (Connection: close), $CONNS connections, ${DURATION}s"
grep -E '^(RESULT|LATENCY|FIRST_FAILURE)' "$WORK/wrk-close.out"
echo "--- keep-alive, $CONNS connections, ${DURATION}s"
grep -E '^(RESULT|LATENCY|FIRST_FAILURE)' "$WORK/wrk-keepalive.out"
cat "$WORK/verify.out"
echo "rotations: $(cat "$WORK/rotations")"
echo "$METRICS" | grep '^entrypoint_guard_tls_reloads_total'
echo "rss: start ${RSS0} KiB, end $(rss_kib "$SERVE_PID") KiB, peak $(hwm_kib "$SERVE_PID") KiB"
fail=0
for f in "$WORK/wrk-close.out" "$WORK/wrk-keepalive.out"; do
  grep -q 'failed_checks=0 errors_connect=0 errors_read=0 errors_write=0 errors_status=0 errors_timeout=0' "$f" || fail=1
done
grep -q 'failed=0' "$WORK/verify.out" || fail=1
[ "$fail" = 0 ] && echo "ROTATION OK: 0 failed requests" || { echo "ROTATION FAILED"; exit 1; }
