#!/usr/bin/env bash
# SIGTERM during load. The webhook serves fast admissions (offline facts) to
# wrk on keep-alive connections, and SLOW admissions that each wait ~3 s
# (registry.budget) on a stalled registry (the fault stand-in). With SLOW
# requests in flight it gets SIGTERM; then:
#   - every in-flight slow request must complete with an allowed answer,
#   - a new connection right after SIGTERM must be refused,
#   - the process must exit within server.shutdownGrace (GRACE), exit code 0.
# wrk's own counts after SIGTERM are printed: connect errors are the refused
# new connections; read errors would be requests lost in flight.
#
#   scripts/reliability/shutdown.sh [SLOW=20] [GRACE=20s]
source "$(dirname "$0")/lib.sh"
SLOW="${1:-20}"
GRACE="${2:-20s}"
machine
# The stand-in only stalls here; its upstream is never contacted.
start_fault_registry 127.0.0.1:9 stall

PORT=$(free_port); HPORT=$(free_port)
self_signed "$WORK/tls"
cat >"$WORK/config.yaml" <<YAML
server:
  listen: 127.0.0.1:$PORT
  healthListen: 127.0.0.1:$HPORT
  tlsCert: $WORK/tls/tls.crt
  tlsKey: $WORK/tls/tls.key
  shutdownGrace: $GRACE
registry:
  enabled: true
  pullSecrets: false
  insecure: ["$FAULT"]
  allowPrivate: ["$FAULT"]
imageFacts:
  registry.example/app:1.0:
    entrypoint: [/chalk, exec, --]
    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
YAML
start_serve "$WORK/config.yaml" "$WORK/serve.log"
URL="https://127.0.0.1:$PORT/mutate?timeout=10s"
review_body registry.example/app "$WORK/fast.json"
review_body "$FAULT/chalk/slow" "$WORK/slow.json"

EG_BODY="$WORK/fast.json" EG_EXPECT=patch wrk -t1 -c16 -d6s --timeout 10s -s "$HERE/admission.lua" "$URL" \
  >"$WORK/wrk.out" 2>&1 &
WRK=$!
sleep 1
CURLS=()
for i in $(seq 1 "$SLOW"); do
  sed "s/__UID__/5105$(printf %04d "$i")-0000-4000-8000-000000000000/; s/__TAG__/t$i/" "$WORK/slow.json" >"$WORK/slow-$i.json"
  curl -sk -o "$WORK/slow-$i.out" -w '%{http_code} %{time_total}\n' -H 'Content-Type: application/json' \
    --data-binary "@$WORK/slow-$i.json" "$URL" >"$WORK/slow-$i.code" 2>&1 &
  CURLS+=($!)
done
sleep 1 # the slow requests are now waiting on the stalled registry
T0=$(date +%s.%N)
kill -TERM "$SERVE_PID"
sleep 0.1
if curl -sk -o /dev/null --max-time 3 -H 'Content-Type: application/json' --data-binary "@$WORK/fast.json" "$URL"; then
  NEW="ACCEPTED"; else NEW="refused (curl exit $?)"; fi
RC=0; wait "$SERVE_PID" || RC=$?
T1=$(date +%s.%N)
wait "$WRK" "${CURLS[@]}" || true
ok=0; bad=0
for i in $(seq 1 "$SLOW"); do
  if grep -q '^200 ' "$WORK/slow-$i.code" && grep -q '"allowed":true' "$WORK/slow-$i.out"; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
done
EXIT_S=$(echo "$T1 - $T0" | bc)
echo "in-flight slow requests: $ok completed allowed, $bad failed; their times: $(cut -d' ' -f2 "$WORK"/slow-*.code | sort -n | sed -n '1p;$p' | tr '\n' ' ')s (first, last)"
echo "new connection 0.1 s after SIGTERM: $NEW"
echo "exit: code $RC, $EXIT_S s after SIGTERM (grace $GRACE)"
grep '"shutting down' "$WORK/serve.log" | head -1
echo "wrk (fast, keep-alive, 16 connections, SIGTERM 2 s into 6 s):"
grep -E '^(RESULT|LATENCY)' "$WORK/wrk.out"
GRACE_S=$(echo "$GRACE" | tr -d 's')
if [ "$bad" = 0 ] && [ "$RC" = 0 ] && [[ "$NEW" == refused* ]] && [ "$(echo "$EXIT_S < $GRACE_S" | bc)" = 1 ]; then
  echo "SHUTDOWN OK"; else echo "SHUTDOWN FAILED"; exit 1; fi
