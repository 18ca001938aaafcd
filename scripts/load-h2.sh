#!/usr/bin/env bash
# HTTP/2 (and HTTP/1.1) load test of the webhook next to a constant-answer
# server, with h2load (Debian nghttp2-client; scripts/testenv/install.sh
# installs it). Not run by CI: prints numbers, fails only when an answer is
# wrong or a request fails.
#
# Both servers run on the same stack and certificate: `entrypoint-guard
# serve` with offline image facts for the fixture's images (every answer is
# a patch) and examples/constant_server.rs (answering serve's own answer
# bytes without doing any work). Every measurement is taken interleaved in
# this one run — constant, serve, constant, serve — because the machine's
# load moves absolute numbers by 2x between minutes; the ratios are what to
# compare across runs.
#
# Pass 1 (h2load, ROUNDS rounds, each over h2 then HTTP/1.1): CONNS
# connections x STREAMS concurrent streams, the pod-create.json fixture,
# DURATION seconds each, at full load, then both servers paced at half of
# serve's measured rate in that round (h2load --rps, per connection).
# p50/p99 come from h2load's per-request log (microseconds from the request
# being sent to its answer's end). Over HTTP/1.1 h2load keeps one request in
# flight per connection when it posts a body (its -d), so STREAMS is moot there.
#
# serve runs twice: with its memo (server.memoAnswers, 256 by default) and
# with `memoAnswers: 0`. h2load sends one body again and again, so with the
# memo every request after the first is recalled (not decoded: the same
# bytes, uid included; the Pods of one ReplicaSet differ in their uid, token
# volume name and managed-field timestamps, which the recall allows) and
# answered from memory:
# that is the best case (the Pods of one ReplicaSet reach mutating
# admission alike: generateName, no name yet). The memo-off server is the
# worst case (a stream of all-different objects), plus nothing: no key is
# built, no body kept. Rows "h2" / "h1" are the memo on, "h2-nomemo" / "h1-nomemo" off;
# each is paced at half of its own rate, the constant server with it.
#
# Pass 2 (examples/loadgen.rs, HTTPS/1.1): CHECK_REQUESTS requests to each
# server, each with a fresh uid, and every answer checked (HTTP 200, the uid
# echoed, a JSONPatch) — the answers h2load does not look at.
#
#   scripts/load-h2.sh   # ROUNDS=3 DURATION=8 CONNS=16 STREAMS=8 LOG_LEVEL=info LOG_FORMAT=text CHECK_REQUESTS=100000
#
# BIN_DIR=path uses already-built binaries (entrypoint-guard, examples/
# constant_server and loadgen) instead of building release ones.
# BEFORE_BIN=path/entrypoint-guard also runs that build of serve (an older
# commit, say), interleaved with the others in every round, so a change is
# measured before and after under the same load. Serve's peak RSS (VmHWM) is
# printed at the end. Needs h2load, curl and python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
CONNS=${CONNS:-16}
STREAMS=${STREAMS:-8}
LOG_LEVEL=${LOG_LEVEL:-info}
LOG_FORMAT=${LOG_FORMAT:-text} # the chart deploys json
CHECK_REQUESTS=${CHECK_REQUESTS:-100000}
PROTOCOLS=${PROTOCOLS:-"h2 h1"}
SERVE_PORT=${SERVE_PORT:-18463}
CONST_PORT=${CONST_PORT:-18464}
SERVE_ARGS=${SERVE_ARGS:-}
BEFORE_PORT=${BEFORE_PORT:-18465}
NOMEMO_PORT=${NOMEMO_PORT:-18466}
MEMO=${MEMO:-"on off"} # which serve variants to run: memo on, memo off

source scripts/load-common.sh
need_tools load-h2 h2load curl python3

load_bins
load_workspace

# shellcheck disable=SC2086 # SERVE_ARGS is a list of words
"$bin" --log-level "$LOG_LEVEL" --log-format "$LOG_FORMAT" serve --self-signed "$tmp/certs" --images "$tmp/facts.yaml" \
  --listen "127.0.0.1:$SERVE_PORT" --health-listen off $SERVE_ARGS 2>"$tmp/serve.log" >/dev/null &
serve_pid=$!
pids+=("$serve_pid")

start_servers

nomemo_url=
if [[ " $MEMO " == *" off "* ]]; then
  printf 'server:\n  memoAnswers: 0\n' >"$tmp/nomemo.yaml"
  # shellcheck disable=SC2086 # SERVE_ARGS is a list of words
  "$bin" --log-level "$LOG_LEVEL" --log-format "$LOG_FORMAT" --config "$tmp/nomemo.yaml" serve \
    --tls-cert "$tmp/certs/tls.crt" --tls-key "$tmp/certs/tls.key" --images "$tmp/facts.yaml" \
    --listen "127.0.0.1:$NOMEMO_PORT" --health-listen off $SERVE_ARGS 2>"$tmp/nomemo.log" >/dev/null &
  nomemo_pid=$!
  pids+=("$nomemo_pid")
  nomemo_url="https://localhost:$NOMEMO_PORT/mutate?timeout=10s"
  wait_for "$nomemo_url"
fi

before_url=
if [ -n "${BEFORE_BIN:-}" ]; then
  # shellcheck disable=SC2086 # SERVE_ARGS is a list of words
  "$BEFORE_BIN" --log-level "$LOG_LEVEL" --log-format "$LOG_FORMAT" serve --tls-cert "$tmp/certs/tls.crt" --tls-key "$tmp/certs/tls.key" \
    --images "$tmp/facts.yaml" --listen "127.0.0.1:$BEFORE_PORT" --health-listen off $SERVE_ARGS \
    2>"$tmp/before.log" >/dev/null &
  pids+=($!)
  before_url="https://localhost:$BEFORE_PORT/mutate?timeout=10s"
  wait_for "$before_url"
fi

hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/${1:-$serve_pid}/status"; }
idle_rss=$(awk '/^VmRSS/ {print $2}' "/proc/$serve_pid/status")

# One h2load run; prints "rps p50_ms p99_ms" and fails on any failed request.
h2() { # proto url rps_per_conn(0 = full)
  local proto=$1 url=$2 rps=$3 flags=()
  [ "$proto" = h1 ] && flags+=(--h1)
  [ "$rps" != 0 ] && flags+=("--rps=$rps")
  rm -f "$tmp/h2.log"
  h2load -c "$CONNS" -m "$STREAMS" -t 1 -D "$DURATION" --warm-up-time=1 -d "$fixture" \
    -H 'content-type: application/json' --log-file="$tmp/h2.log" "${flags[@]}" "$url" >"$tmp/h2.out" 2>&1 || {
    cat "$tmp/h2.out" >&2
    exit 1
  }
  python3 - "$tmp/h2.out" "$tmp/h2.log" <<'EOF'
import re, sys
out = open(sys.argv[1]).read()
rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))
m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
if m is None or codes is None or int(m.group(5)) or int(m.group(6)) or int(m.group(7)) or int(codes.group(3)) or int(codes.group(4)):
    sys.stderr.write(out)
    sys.exit("load-h2: h2load saw failed requests")
lat = sorted(int(l.split("\t")[2]) for l in open(sys.argv[2]) if l.strip())
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] / 1000
print(f"{rps:.0f} {pct(0.50):.3f} {pct(0.99):.3f}")
EOF
}

echo "load-h2: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "load-h2: $CONNS connections x $STREAMS streams, ${DURATION}s per run, $ROUNDS rounds, serve log level $LOG_LEVEL, format $LOG_FORMAT" >&2
rows=()
# One variant of serve against the constant server's full-load figures of
# the round: serve at full load, then both paced at half of serve's rate.
variant() { # label url
  read -r s_rps s_p50 s_p99 < <(h2 "$proto" "$2" 0)
  per_conn=$((s_rps / 2 / CONNS))
  [ "$per_conn" -ge 1 ] || per_conn=1
  read -r ch_rps ch_p50 ch_p99 < <(h2 "$proto" "$const_url" "$per_conn")
  read -r sh_rps sh_p50 sh_p99 < <(h2 "$proto" "$2" "$per_conn")
  row="$round $1 $c_rps $s_rps $c_p50 $s_p50 $c_p99 $s_p99 $((per_conn * CONNS)) $ch_p50 $sh_p50 $ch_p99 $sh_p99"
  echo "  $row" >&2
  rows+=("$row")
}
for round in $(seq "$ROUNDS"); do
  for proto in $PROTOCOLS; do
    read -r c_rps c_p50 c_p99 < <(h2 "$proto" "$const_url" 0)
    if [[ " $MEMO " == *" on "* ]]; then variant "$proto" "$serve_url"; fi
    if [ -n "$nomemo_url" ]; then variant "$proto-nomemo" "$nomemo_url"; fi
    if [ -n "$before_url" ]; then variant "$proto-before" "$before_url"; fi
  done
done
h2_hwm=$(hwm_kb)
nomemo_hwm=
[ -z "$nomemo_url" ] || nomemo_hwm=$(hwm_kb "$nomemo_pid")

# Pass 2: every answer checked.
check() { # label url check echo_uid
  "$loadgen" --url "$2" --ca "$tmp/certs/ca.crt" --body "$fixture" --requests "$CHECK_REQUESTS" \
    --connections "$((CONNS * STREAMS))" --check "$3" --echo-uid "$4" | tee "$tmp/check.out" >&2
  grep '^RESULT' "$tmp/check.out" | sed "s/^RESULT/$1/"
}
checked=()
checked+=("$(check constant "$const_url" allowed false)")
checked+=("$(check serve "$serve_url" patch true)")
[ -z "$nomemo_url" ] || checked+=("$(check serve-nomemo "$nomemo_url" patch true)")

echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); serve RSS idle ${idle_rss} kB, peak (VmHWM) after h2load ${h2_hwm} kB, at the end $(hwm_kb) kB"
[ -z "$nomemo_url" ] || echo "serve with memoAnswers 0: peak (VmHWM) after h2load ${nomemo_hwm} kB, at the end $(hwm_kb "$nomemo_pid") kB"
echo
echo "pass 1, h2load: $CONNS connections x $STREAMS streams, ${DURATION}s per run (latencies in ms)"
printf '%-5s %-9s %9s %9s %6s | %7s %7s %7s %7s | %9s %7s %7s %7s %7s %6s\n' round proto \
  const_rps serve_rps ratio c_p50 s_p50 c_p99 s_p99 half_rps c_p50 s_p50 c_p99 s_p99 p99x
for row in "${rows[@]}"; do
  # shellcheck disable=SC2086 # a row is a list of words
  set -- $row
  python3 -c "
r, p, c, s, cp50, sp50, cp99, sp99, half, chp50, shp50, chp99, shp99 = '$*'.split()
print(f'{r:<5} {p:<9} {c:>9} {s:>9} {int(s)/int(c):6.3f} | {cp50:>7} {sp50:>7} {cp99:>7} {sp99:>7} | {half:>9} {chp50:>7} {shp50:>7} {chp99:>7} {shp99:>7} {float(shp99)/float(chp99):6.2f}')"
done
python3 -c "
import statistics
rows = [r.split() for r in '''$(printf '%s\n' "${rows[@]}")'''.splitlines()]
for proto in sorted({r[1] for r in rows}):
    ratios = [int(r[3]) / int(r[2]) for r in rows if r[1] == proto]
    tails = [float(r[12]) / float(r[11]) for r in rows if r[1] == proto]
    print(f'{proto}: ratio serve/constant median {statistics.median(ratios):.3f} (rounds: ' + ', '.join(f'{x:.3f}' for x in ratios)
          + f'); p99 at half load serve/constant median {statistics.median(tails):.2f}')
"
echo
echo "pass 2, loadgen (HTTPS/1.1, $((CONNS * STREAMS)) connections, every answer checked):"
printf '%s\n' "${checked[@]}"
