#!/usr/bin/env bash
# Benchmark of the webhook (not run by CI; prints numbers, asserts nothing).
#
# wrk POSTs the captured Pod CREATE AdmissionReview to `entrypoint-guard serve`
# (/mutate, offline image facts so the answer carries a real patch) and to
# examples/constant_server.rs (same axum + axum-server + rustls stack, same
# certificate, answering the webhook's own answer bytes without any work), in
# the same run, keep-alive, CONNS connections. Then both again at about half
# of the webhook's peak rate (wrk's per-connection delay()) for p99 latency.
#
#   scripts/bench-serve.sh            # DURATION=15s CONNS=64 THREADS=2 LOG_LEVEL=info
#
# Needs wrk and curl (apt-get install -y wrk curl). Builds release binaries.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-15s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
LOG_LEVEL=${LOG_LEVEL:-info}
SERVE_PORT=${SERVE_PORT:-18443}
CONST_PORT=${CONST_PORT:-18444}

for tool in wrk curl; do
  command -v "$tool" >/dev/null || { echo "bench-serve: $tool is missing: apt-get install -y $tool" >&2; exit 1; }
done

cargo build --release --quiet --bin entrypoint-guard --example constant_server
bin=target/release/entrypoint-guard
const=target/release/examples/constant_server

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

fixture=tests/fixtures/admission-reviews/pod-create.json
cat >"$tmp/facts.yaml" <<'EOF'
registry.example/app:1.0:
  entrypoint: [/chalk, exec, --]
  digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
registry.example/init:1.0:
  entrypoint: [/chalk, exec, --heartbeat, --exec-command-name, /docker-entrypoint.sh, --]
  digest: sha256:2222222222222222222222222222222222222222222222222222222222222222
registry.example/sidecar:1.0:
  entrypoint: [/chalk, exec, --]
  digest: sha256:3333333333333333333333333333333333333333333333333333333333333333
EOF

"$bin" --log-level "$LOG_LEVEL" serve --self-signed "$tmp/certs" --images "$tmp/facts.yaml" \
  --listen "127.0.0.1:$SERVE_PORT" --health-listen off 2>"$tmp/serve.log" &
pids+=($!)

wait_for() { # url
  for _ in $(seq 100); do
    if curl -s -o /dev/null --cacert "$tmp/certs/ca.crt" -H 'content-type: application/json' \
      --data-binary "@$fixture" "$1"; then return 0; fi
    sleep 0.1
  done
  echo "bench-serve: $1 never answered" >&2; exit 1
}
wait_for "https://localhost:$SERVE_PORT/mutate?timeout=10s"
curl -s --cacert "$tmp/certs/ca.crt" -H 'content-type: application/json' --data-binary "@$fixture" \
  "https://localhost:$SERVE_PORT/mutate?timeout=10s" >"$tmp/answer.json"
grep -q '"patchType":"JSONPatch"' "$tmp/answer.json" || { echo "bench-serve: no patch in the answer" >&2; exit 1; }

"$const" --listen "127.0.0.1:$CONST_PORT" --tls-cert "$tmp/certs/tls.crt" --tls-key "$tmp/certs/tls.key" \
  --answer "$tmp/answer.json" 2>/dev/null &
pids+=($!)
wait_for "https://localhost:$CONST_PORT/mutate"

body=$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$fixture")
cat >"$tmp/post.lua" <<EOF
wrk.method = "POST"
wrk.body = $body
wrk.headers["Content-Type"] = "application/json"
EOF

run() { # url [delay_ms] -> "req/s p50 p99" (latencies in ms)
  local script="$tmp/post.lua"
  if [ -n "${2:-}" ]; then
    script="$tmp/paced.lua"
    { cat "$tmp/post.lua"; echo "function delay() return $2 end"; } >"$script"
  fi
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$script" "$1" >"$tmp/wrk.out"
  python3 - "$tmp/wrk.out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(label):
    m = re.search(r"^\s*" + label + r"%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = re.search(r"Socket errors:.*|Non-2xx.*", text)
print(f"{rps:.0f} {ms('50'):.3f} {ms('99'):.3f}" + (f"  ({errors.group(0)})" if errors else ""))
PY
}

serve_url="https://localhost:$SERVE_PORT/mutate?timeout=10s"
const_url="https://localhost:$CONST_PORT/mutate?timeout=10s"
echo "warming up..."
wrk -t"$THREADS" -c"$CONNS" -d3s -s "$tmp/post.lua" "$serve_url" >/dev/null
wrk -t"$THREADS" -c"$CONNS" -d3s -s "$tmp/post.lua" "$const_url" >/dev/null

echo "full load: wrk -t$THREADS -c$CONNS -d$DURATION, keep-alive, POST $(wc -c <"$fixture") bytes, answer $(wc -c <"$tmp/answer.json") bytes"
read -r c_rps c_p50 c_p99 c_rest < <(run "$const_url")
read -r s_rps s_p50 s_p99 s_rest < <(run "$serve_url")
printf '%-10s %10s %10s %10s\n' server req/s p50_ms p99_ms
printf '%-10s %10s %10s %10s %s\n' constant "$c_rps" "$c_p50" "$c_p99" "${c_rest:-}"
printf '%-10s %10s %10s %10s %s\n' serve "$s_rps" "$s_p50" "$s_p99" "${s_rest:-}"
python3 -c "print(f'ratio serve/constant: {$s_rps / $c_rps:.3f}')"

# About half of the webhook's peak: each connection waits between requests.
delay=$(python3 -c "print(max(1, round($CONNS * 1000 / ($s_rps / 2))))")
echo "half load (~$((s_rps / 2)) req/s: wrk delay() of ${delay} ms per connection)"
read -r c_rps c_p50 c_p99 c_rest < <(run "$const_url" "$delay")
read -r s_rps s_p50 s_p99 s_rest < <(run "$serve_url" "$delay")
printf '%-10s %10s %10s %10s %s\n' constant "$c_rps" "$c_p50" "$c_p99" "${c_rest:-}"
printf '%-10s %10s %10s %10s %s\n' serve "$s_rps" "$s_p50" "$s_p99" "${s_rest:-}"
