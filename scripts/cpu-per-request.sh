#!/usr/bin/env bash
# CPU time per request of `entrypoint-guard serve` builds under h2load: the
# server's own user+system time (/proc/PID/stat) over a fixed number of
# requests, the builds taking turns. On a shared machine req/s moves by 2x
# from one minute to the next; the CPU a server spends per request moves far
# less (other tenants delay it, they do not make it work more), so a change
# of a few microseconds per request shows here when load-h2.sh's ratios
# cannot see it. Not run by CI: prints numbers.
#
#   scripts/cpu-per-request.sh BIN [BIN...]    # each BIN an entrypoint-guard build
#
# Each build is started with the same arguments as in load-h2.sh (offline
# image facts, so every answer is a patch; pod-create.json), plus
# CONFIG=file (e.g. server.memoAnswers: 0) when given. ROUNDS rounds of
# REQUESTS requests (CONNS x STREAMS over h2, after a warm-up of 2,000);
# prints µs of CPU per request, each round and the median.
# CONST=path/to/examples/constant_server also runs the constant-answer server
# (serve's own answer, replayed) in the same rounds, so serve's cost can be
# stated against the transport's alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-40000}
CONNS=${CONNS:-16}
STREAMS=${STREAMS:-8}
LOG_LEVEL=${LOG_LEVEL:-info}
LOG_FORMAT=${LOG_FORMAT:-text}
PORT=${PORT:-18470}
[ $# -ge 1 ] || { echo "usage: $0 BIN [BIN...]" >&2; exit 2; }
source scripts/load-common.sh
need_tools cpu-per-request h2load curl python3

load_workspace
config=()
[ -z "${CONFIG:-}" ] || config=(--config "$CONFIG")

urls=()
for i in $(seq $#); do
  bin=${!i}
  port=$((PORT + i))
  "$bin" --log-level "$LOG_LEVEL" --log-format "$LOG_FORMAT" "${config[@]}" serve --self-signed "$tmp/certs$i" \
    --images tests/fixtures/fixture-images.yaml --listen "127.0.0.1:$port" --health-listen off 2>"$tmp/serve$i.log" >/dev/null &
  pids+=($!)
  urls+=("https://127.0.0.1:$port/mutate?timeout=10s")
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
hz=$(getconf CLK_TCK)
load() { # url requests
  h2load -c "$CONNS" -m "$STREAMS" -t 1 -n "$2" -d "$fixture" -H 'content-type: application/json' "$1" >"$tmp/out" 2>&1 ||
    { cat "$tmp/out" >&2; exit 1; }
  grep -q "$2 succeeded, 0 failed, 0 errored" "$tmp/out" || { cat "$tmp/out" >&2; exit 1; }
}
for i in "${!urls[@]}"; do
  for _ in $(seq 100); do
    curl -sk -o /dev/null -H 'content-type: application/json' --data-binary "@$fixture" "${urls[$i]}" && break
    sleep 0.1
  done
  load "${urls[$i]}" 2000
done

names=("$@")
if [ -n "${CONST:-}" ]; then
  # The constant server answers what the first build answered, on its certificate.
  curl -sk -H 'content-type: application/json' --data-binary "@$fixture" "${urls[0]}" >"$tmp/answer.json"
  grep -q '"patchType":"JSONPatch"' "$tmp/answer.json" || { echo "cpu-per-request: no patch in the answer" >&2; exit 1; }
  port=$((PORT + $# + 1))
  "$CONST" --listen "127.0.0.1:$port" --tls-cert "$tmp/certs1/tls.crt" --tls-key "$tmp/certs1/tls.key" \
    --answer "$tmp/answer.json" 2>/dev/null &
  pids+=($!)
  urls+=("https://127.0.0.1:$port/mutate?timeout=10s")
  names+=("$CONST")
  for _ in $(seq 100); do
    curl -sk -o /dev/null -H 'content-type: application/json' --data-binary "@$fixture" "${urls[-1]}" && break
    sleep 0.1
  done
  load "${urls[-1]}" 2000
fi

echo "cpu-per-request: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $REQUESTS requests x $ROUNDS rounds, log $LOG_LEVEL/$LOG_FORMAT${CONFIG:+, config $CONFIG}"
declare -A results
for round in $(seq "$ROUNDS"); do
  for i in "${!urls[@]}"; do
    before=$(ticks "${pids[$i]}")
    load "${urls[$i]}" "$REQUESTS"
    after=$(ticks "${pids[$i]}")
    us=$(python3 -c "print(f'{($after - $before) / $hz / $REQUESTS * 1e6:.1f}')")
    results[$i]+="$us "
    echo "  round $round, build $((i + 1)): $us µs CPU per request"
  done
done
for i in "${!urls[@]}"; do
  n=$((i + 1))
  python3 -c "
import statistics
xs = [float(x) for x in '${results[$i]}'.split()]
print(f'build $n (${names[$i]}): median {statistics.median(xs):.1f} µs CPU per request (rounds: ' + ', '.join(f'{x:.1f}' for x in xs) + '); VmHWM $(awk '/^VmHWM/ {print $2}' "/proc/${pids[$i]}/status") kB')"
done
