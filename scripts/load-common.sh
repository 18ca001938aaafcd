# Shared by scripts/load.sh, scripts/load-h2.sh and scripts/cpu-per-request.sh
# (sourced, from the repository root): the tool check, the binaries and the
# scratch directory whose processes are stopped on exit.

# need_tools SCRIPT TOOL...: exits naming the first missing tool.
need_tools() {
  local script=$1 tool
  LOAD_SCRIPT=$script
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || {
      echo "$script: $tool is missing (scripts/testenv/install.sh installs it; h2load: apt-get install -y nghttp2-client)" >&2
      exit 1
    }
  done
}

# load_bins: bin, const and loadgen from BIN_DIR, built in release when BIN_DIR is unset.
load_bins() {
  if [ -z "${BIN_DIR:-}" ]; then
    cargo build --release --quiet --bin entrypoint-guard --example constant_server --example loadgen
    BIN_DIR=target/release
  fi
  bin=$BIN_DIR/entrypoint-guard
  const=$BIN_DIR/examples/constant_server
  loadgen=${LOADGEN:-$BIN_DIR/examples/loadgen}
}

# load_workspace: $tmp (removed on exit), $pids (killed on exit), the
# pod-create.json $fixture and its image facts in $tmp/facts.yaml.
load_workspace() {
  tmp=$(mktemp -d)
  pids=()
  trap load_cleanup EXIT
  fixture=tests/fixtures/admission-reviews/pod-create.json
  cp tests/fixtures/fixture-images.yaml "$tmp/facts.yaml"
}

load_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}

# wait_for URL: until the server there answers the fixture (on $tmp/certs).
wait_for() {
  for _ in $(seq 100); do
    if curl -s -o /dev/null --cacert "$tmp/certs/ca.crt" -H 'content-type: application/json' \
      --data-binary "@$fixture" "$1"; then return 0; fi
    sleep 0.1
  done
  echo "$LOAD_SCRIPT: $1 never answered" >&2
  exit 1
}

# start_servers: once serve answers at $serve_url, the constant server
# (examples/constant_server) replays its answer, a patch, on $CONST_PORT.
start_servers() {
  serve_url="https://localhost:$SERVE_PORT/mutate?timeout=10s"
  const_url="https://localhost:$CONST_PORT/mutate?timeout=10s"
  wait_for "$serve_url"
  curl -s --cacert "$tmp/certs/ca.crt" -H 'content-type: application/json' --data-binary "@$fixture" \
    "$serve_url" >"$tmp/answer.json"
  grep -q '"patchType":"JSONPatch"' "$tmp/answer.json" || { echo "$LOAD_SCRIPT: no patch in the answer" >&2; exit 1; }
  "$const" --listen "127.0.0.1:$CONST_PORT" --tls-cert "$tmp/certs/tls.crt" --tls-key "$tmp/certs/tls.key" \
    --answer "$tmp/answer.json" 2>/dev/null &
  pids+=($!)
  wait_for "$const_url"
}
