#!/usr/bin/env bash
# Slow and hostile clients (issue 11): COUNT TLS connections that each stall
# (a 4 MiB body sent but its last byte, half a request head, or nothing after
# the handshake), held up to HOLD seconds, while a normal AdmissionReview is
# POSTed once a second on a fresh connection. Prints the server's RSS and how
# many hostile connections it still holds, each second, then a SUMMARY line
# per mode. The server runs with its default server.* bounds unless
# EG_SERVER_YAML adds keys (indented two spaces).
#
#   scripts/reliability/slow-clients.sh [COUNT=40] [HOLD=45] [MODES="body header silent"]
source "$(dirname "$0")/lib.sh"
COUNT="${1:-40}"
HOLD="${2:-45}"
MODES="${3:-body header silent}"
machine
start_offline_serve slow-clients-probe
sleep 1
echo "serve idle: rss $(rss_kib "$SERVE_PID") KiB"
for mode in $MODES; do
  echo "--- $COUNT connections, mode $mode"
  python3 "$HERE/hostile.py" "$PORT" "$mode" "$COUNT" "$HOLD" --pid "$SERVE_PID" --probe "$WORK/review.json"
  echo "after: rss $(rss_kib "$SERVE_PID") KiB, peak $(hwm_kib "$SERVE_PID") KiB"
done
