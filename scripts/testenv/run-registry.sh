#!/usr/bin/env bash
# Start Debian's docker-registry (distribution v2) on loopback, in the background,
# with everything (config, storage, certs, htpasswd, logs) under one directory.
#
#   scripts/testenv/run-registry.sh DIR PORT [plain|tls|tls-auth]
#
# Waits until GET /v2/ answers, then prints shell assignments on stdout:
#   REGISTRY=127.0.0.1:PORT REGISTRY_PID=... REGISTRY_DIR=DIR
#   REGISTRY_ACCESS_LOG=DIR/access.log   (stdout: one Apache combined line per request)
#   REGISTRY_APP_LOG=DIR/registry.log    (stderr: logrus key=value lines)
#   REGISTRY_CA=DIR/certs/ca.crt REGISTRY_CERT_DIR=DIR/certs.d   (tls, tls-auth)
#   REGISTRY_USER=user REGISTRY_PASS=pass                          (tls-auth)
# so:  eval "$(scripts/testenv/run-registry.sh /tmp/r 5000 tls-auth)"
# Stop it with:  kill "$REGISTRY_PID"
set -euo pipefail

DIR="${1:?usage: $0 DIR PORT [plain|tls|tls-auth]}"
PORT="${2:?usage: $0 DIR PORT [plain|tls|tls-auth]}"
MODE="${3:-plain}"
case "$MODE" in plain|tls|tls-auth) ;; *) echo "unknown mode $MODE" >&2; exit 2 ;; esac

mkdir -p "$DIR/data"
DIR="$(cd "$DIR" && pwd)"
ADDR="127.0.0.1:$PORT"

tls_conf=""
auth_conf=""
scheme=http
curl_opts=()
if [ "$MODE" != plain ]; then
  scheme=https
  C="$DIR/certs"
  mkdir -p "$C" "$DIR/certs.d"
  if [ ! -s "$C/server.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=entrypoint-guard test CA" -keyout "$C/ca.key" -out "$C/ca.crt" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=localhost" -keyout "$C/server.key" -out "$C/server.csr" 2>/dev/null
    printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
      'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >"$C/server.ext"
    openssl x509 -req -in "$C/server.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial \
      -days 3650 -extfile "$C/server.ext" -out "$C/server.crt" 2>/dev/null
  fi
  # skopeo --cert-dir / --dest-cert-dir: a directory whose *.crt files are CAs
  cp "$C/ca.crt" "$DIR/certs.d/ca.crt"
  tls_conf="  tls:
    certificate: $C/server.crt
    key: $C/server.key"
  curl_opts+=(--cacert "$C/ca.crt")
fi
if [ "$MODE" = tls-auth ]; then
  htpasswd -Bbn user pass >"$DIR/htpasswd"
  auth_conf="auth:
  htpasswd:
    realm: entrypoint-guard-test
    path: $DIR/htpasswd"
fi

cat >"$DIR/config.yml" <<EOF
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $ADDR
  secret: entrypoint-guard-test-secret
$tls_conf
$auth_conf
EOF

setsid /usr/bin/docker-registry serve "$DIR/config.yml" \
  >"$DIR/access.log" 2>"$DIR/registry.log" </dev/null &
pid=$!
echo "$pid" >"$DIR/registry.pid"

# ready = /v2/ answers (200 plain/tls, 401 with auth); typically < 0.1 s
for _ in $(seq 1 200); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "docker-registry exited; log:" >&2; cat "$DIR/registry.log" >&2; exit 1
  fi
  code="$(curl -s -o /dev/null -w '%{http_code}' ${curl_opts[@]+"${curl_opts[@]}"} "$scheme://$ADDR/v2/" || true)"
  case "$code" in 200|401) break ;; esac
  sleep 0.05
done
case "$code" in 200|401) ;; *) echo "docker-registry not ready on $ADDR" >&2; kill "$pid"; exit 1 ;; esac

echo "REGISTRY=$ADDR"
echo "REGISTRY_PID=$pid"
echo "REGISTRY_DIR=$DIR"
echo "REGISTRY_ACCESS_LOG=$DIR/access.log"
echo "REGISTRY_APP_LOG=$DIR/registry.log"
if [ "$MODE" != plain ]; then
  echo "REGISTRY_CA=$DIR/certs/ca.crt"
  echo "REGISTRY_CERT_DIR=$DIR/certs.d"
fi
if [ "$MODE" = tls-auth ]; then
  echo "REGISTRY_USER=user"
  echo "REGISTRY_PASS=pass"
fi
