# Shared helpers of the scripts/reliability/*.sh runs (sourced, not run).
# EG_BIN picks the binary (default: target/release/entrypoint-guard if built, else target/debug).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/scripts/reliability"
if [ -z "${EG_BIN:-}" ]; then
  if [ -x "$ROOT/target/release/entrypoint-guard" ]; then EG_BIN="$ROOT/target/release/entrypoint-guard"
  else EG_BIN="$ROOT/target/debug/entrypoint-guard"; fi
fi
for tool in wrk jq openssl curl bc python3; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool (run scripts/testenv/install.sh or apt-get install $tool)" >&2; exit 1; }
done
WORK="$(mktemp -d /tmp/eg-reliability.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

machine() {
  echo "date: $(date -u +%FT%TZ)  host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)  binary: $EG_BIN"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# make_pair DIR NAME: a CA and a serving certificate for localhost/127.0.0.1.
make_pair() {
  local d="$1/$2"; mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=eg reliability CA $2" -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
    -keyout "$d/tls.key" -out "$d/tls.csr" 2>/dev/null
  printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'extendedKeyUsage=serverAuth' >"$d/ext"
  openssl x509 -req -in "$d/tls.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 30 \
    -extfile "$d/ext" -out "$d/tls.crt" 2>/dev/null
}

# review_body IMAGE_PREFIX OUT: the captured Pod CREATE review with one container
# running IMAGE_PREFIX:__TAG__ with a command, uid __UID__ (for admission.lua).
review_body() {
  jq -c --arg image "$1:__TAG__" '.request.uid = "__UID__"
    | .request.object.spec.initContainers = []
    | .request.object.spec.containers = [{"name":"app","image":$image,"command":["/app","--serve"]}]' \
    "$ROOT/tests/fixtures/admission-reviews/pod-create.json" >"$2"
}

# start_serve CONFIG LOG: starts the webhook, waits for readiness, sets SERVE_PID.
start_serve() {
  : >"$2"
  "$EG_BIN" --log-format json serve --config "$1" >"$2" 2>&1 &
  SERVE_PID=$!; PIDS+=("$SERVE_PID")
  for _ in $(seq 1 200); do
    grep -q '"serving admission requests"' "$2" && return 0
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$2" >&2; return 1; }
    sleep 0.05
  done
  echo "serve did not start" >&2; cat "$2" >&2; return 1
}

# start_offline_serve UID: a webhook on a free port ($PORT) with offline image
# facts for registry.example/app:1.0 (no registry), server.* extras from
# $EG_SERVER_YAML; writes the matching review to $WORK/review.json.
start_offline_serve() {
  PORT=$(free_port)
  self_signed "$WORK/tls"
  cat >"$WORK/config.yaml" <<YAML
server:
  listen: 127.0.0.1:$PORT
  healthListen: null
  tlsCert: $WORK/tls/tls.crt
  tlsKey: $WORK/tls/tls.key
${EG_SERVER_YAML:-}
registry:
  enabled: false
imageFacts:
  registry.example/app:1.0:
    entrypoint: [/chalk, exec, --]
    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
YAML
  start_serve "$WORK/config.yaml" "$WORK/serve.log"
  review_body registry.example/app "$WORK/review.tmpl"
  sed -e 's/__TAG__/1.0/' -e "s/__UID__/$1/" "$WORK/review.tmpl" >"$WORK/review.json"
}

# Writes a development CA and serving certificate into $1 (`serve --self-signed`, stopped once written).
self_signed() {
  "$EG_BIN" serve --self-signed "$1" --listen 127.0.0.1:0 --health-listen off >/dev/null 2>&1 &
  local pid=$!
  until [ -s "$1/tls.key" ]; do sleep 0.05; done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

# Builds and starts the fault-injecting registry stand-in (examples/fault_registry.rs)
# in front of $1 (host:port), waits until `GET /__fault/$2` answers (a switch or
# `stats`), and sets FAULT to its address.
start_fault_registry() {
  (cd "$ROOT" && cargo build -q --example fault_registry)
  local port; port=$(free_port)
  "$ROOT/target/debug/examples/fault_registry" "127.0.0.1:$port" "$1" >"$WORK/fault.log" 2>&1 &
  PIDS+=($!)
  until curl -fs "http://127.0.0.1:$port/__fault/$2" >/dev/null; do sleep 0.05; done
  FAULT="127.0.0.1:$port"
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
