# Shared by scripts/load.sh, scripts/load-h2.sh and scripts/cpu-per-request.sh
# (sourced, from the repository root): the tool check, the binaries and the
# scratch directory whose processes are stopped on exit.

# need_tools SCRIPT TOOL...: exits naming the first missing tool.
need_tools() {
  local script=$1 tool
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
