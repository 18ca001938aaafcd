#!/usr/bin/env bash
# Memory: the webhook's RSS at idle, under keep-alive load (offline facts) and
# under load that names a new image in every request (each a registry lookup
# against a stand-in answering 500, cached as a failure); then the resolver
# alone filled with LOOKUPS distinct images (examples/cache_fill.rs), showing
# the cache stays within registry.cacheCapacity and RSS levels off.
#
#   scripts/reliability/memory.sh [LOOKUPS=100000] [SECONDS=30]
source "$(dirname "$0")/lib.sh"
LOOKUPS="${1:-100000}"
DURATION="${2:-30}"
PROFILE=debug; [[ "$EG_BIN" == */release/* ]] && PROFILE=release
machine
(cd "$ROOT" && cargo build -q --profile "$( [ $PROFILE = release ] && echo release || echo dev)" --example cache_fill)
start_fault_registry 127.0.0.1:9 500
PORT=$(free_port)
self_signed "$WORK/tls"
cat >"$WORK/config.yaml" <<YAML
server:
  listen: 127.0.0.1:$PORT
  healthListen: null
  tlsCert: $WORK/tls/tls.crt
  tlsKey: $WORK/tls/tls.key
registry:
  enabled: true
  pullSecrets: false
  negativeTtl: 1h
  insecure: ["$FAULT"]
  allowPrivate: ["$FAULT"]
imageFacts:
  registry.example/app:1.0:
    entrypoint: [/chalk, exec, --]
    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
YAML
start_serve "$WORK/config.yaml" "$WORK/serve.log"
URL="https://127.0.0.1:$PORT/mutate?timeout=10s"
sleep 2
echo "serve idle:                         rss $(rss_kib "$SERVE_PID") KiB"
review_body registry.example/app "$WORK/fast.json"
EG_BODY="$WORK/fast.json" EG_EXPECT=patch wrk -t1 -c64 -d"${DURATION}s" --timeout 10s -s "$HERE/admission.lua" "$URL" >"$WORK/wrk-fast.out" 2>&1
echo "after ${DURATION}s keep-alive load, 64 conns: rss $(rss_kib "$SERVE_PID") KiB, peak $(hwm_kib "$SERVE_PID") KiB; $(grep '^RESULT' "$WORK/wrk-fast.out" | cut -d' ' -f2-4)"
review_body "$FAULT/fill/app" "$WORK/fresh.json"
EG_BODY="$WORK/fresh.json" EG_EXPECT=warning EG_TAG_MODE=fresh wrk -t1 -c64 -d"${DURATION}s" --timeout 10s -s "$HERE/admission.lua" "$URL" >"$WORK/wrk-fresh.out" 2>&1
echo "after ${DURATION}s new-image-per-request load: rss $(rss_kib "$SERVE_PID") KiB, peak $(hwm_kib "$SERVE_PID") KiB; $(grep '^RESULT' "$WORK/wrk-fresh.out" | cut -d' ' -f2-4)"
sleep 5
echo "idle again 5 s later:               rss $(rss_kib "$SERVE_PID") KiB"
for f in "$WORK/wrk-fast.out" "$WORK/wrk-fresh.out"; do grep '^FIRST_FAILURE' "$f" || true; done
kill "$SERVE_PID"
echo "--- resolver cache filled with $LOOKUPS distinct images (cacheCapacity 10000)"
"$ROOT/target/$PROFILE/examples/cache_fill" "$LOOKUPS" 10000
