#!/usr/bin/env bash
# Registry faults under admission load. A real docker-registry holds the test
# images (scripts/testenv/make-images.sh); the fault stand-in
# (examples/fault_registry.rs) sits in front of it; the webhook resolves
# through the stand-in. Phases of SECONDS each, CONNECTIONS wrk connections:
#   baseline  - registry healthy, one tag (cached after the first lookup): every answer patched
#   FAULT     - stall, 500, garbage, 401, drop in turn, a NEW tag per request so that
#               every admission makes a registry lookup: every answer allowed,
#               unpatched, with a warning, inside the API server's timeout (wrk --timeout 10s)
#   recovery  - after each fault the stand-in passes again; a tag never asked
#               before is pinned (time to the first pinned answer is printed)
#
#   scripts/reliability/faults.sh [SECONDS=15] [CONNECTIONS=16]
source "$(dirname "$0")/lib.sh"
DURATION="${1:-15}"
CONNS="${2:-16}"
for tool in docker-registry umoci skopeo; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool (run scripts/testenv/install.sh)" >&2; exit 1; }
done
machine

RPORT=$(free_port)
eval "$("$ROOT/scripts/testenv/run-registry.sh" "$WORK/registry" "$RPORT" plain)"
PIDS+=("$REGISTRY_PID")
"$ROOT/scripts/testenv/make-images.sh" "$REGISTRY" >"$WORK/digests" 2>"$WORK/make-images.log"
start_fault_registry "$REGISTRY" stats
fault() { curl -fs "http://$FAULT/__fault/$1" >/dev/null; }

PORT=$(free_port); HPORT=$(free_port)
self_signed "$WORK/tls"
cat >"$WORK/config.yaml" <<YAML
server:
  listen: 127.0.0.1:$PORT
  healthListen: 127.0.0.1:$HPORT
  tlsCert: $WORK/tls/tls.crt
  tlsKey: $WORK/tls/tls.key
registry:
  enabled: true
  pullSecrets: false
  insecure: ["$FAULT"]
  allowPrivate: ["$FAULT"]
YAML
start_serve "$WORK/config.yaml" "$WORK/serve.log"
URL="https://127.0.0.1:$PORT/mutate?timeout=10s"
review_body "$FAULT/chalk/bare" "$WORK/review.json"
export EG_BODY="$WORK/review.json"

run() { # NAME EXPECT TAG_MODE
  EG_PHASE="$1" EG_EXPECT="$2" EG_TAG_MODE="$3" wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s \
    -s "$HERE/admission.lua" "$URL" >"$WORK/wrk-$1.out" 2>&1
  printf '%-9s %s\n          %s\n' "$1" "$(grep '^RESULT' "$WORK/wrk-$1.out")" "$(grep '^LATENCY' "$WORK/wrk-$1.out")"
  grep '^FIRST_FAILURE' "$WORK/wrk-$1.out" || true
  grep -q 'failed_checks=0 errors_connect=0 errors_read=0 errors_write=0 errors_status=0 errors_timeout=0' "$WORK/wrk-$1.out" \
    || FAILED="$FAILED $1"
}
# recovered REPO: seconds until a review naming REPO:1.0 (never asked before) comes back pinned.
recovered() {
  review_body "$FAULT/$1" "$WORK/recover.json"
  local start; start=$(date +%s.%N)
  for _ in $(seq 1 100); do
    if curl -sk -H 'Content-Type: application/json' --data-binary @<(sed 's/__UID__/0000aaaa-0000-4000-8000-000000000001/; s/__TAG__/1.0/' "$WORK/recover.json") \
      "$URL" | grep -q '"patch":"'; then
      echo "recovery  $1:1.0 pinned $(echo "$(date +%s.%N) - $start" | bc) s after the registry came back"; return 0
    fi
    sleep 0.1
  done
  echo "recovery  $1:1.0 NEVER pinned"; FAILED="$FAILED recovery-$1"
}

FAILED=""
RSS0=$(rss_kib "$SERVE_PID")
fault pass
run baseline patch fixed
set -- chalk/one chalk/two chalk/shell chalk/flags chalk/multi
for f in stall 500 garbage 401 drop; do
  fault "$f"
  run "$f" warning fresh
  fault pass
  recovered "$1"; shift
done
echo "stand-in connections: $(curl -s "http://$FAULT/__fault/stats" | tr '\n' ' ')"
curl -s "http://127.0.0.1:$HPORT/metrics" | grep -E '^entrypoint_guard_(admission_requests|admission_errors|rejected_requests)_total' | head -20 || true
echo "rss: start ${RSS0} KiB, end $(rss_kib "$SERVE_PID") KiB, peak $(hwm_kib "$SERVE_PID") KiB"
if [ -z "$FAILED" ]; then echo "FAULTS OK: every admission answered in time, allowed; pinning resumed"; else echo "FAULTS FAILED:$FAILED"; exit 1; fi
