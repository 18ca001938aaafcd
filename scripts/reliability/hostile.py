#!/usr/bin/env python3
"""Hostile TLS clients against the webhook (stdlib only), for slow-clients.sh
and h2-load.sh.

  hostile.py PORT MODE COUNT HOLD_SECONDS [--pid PID] [--probe BODY_FILE]

MODE: body    declare a 4 MiB body, send all of it but one byte, stall;
      header  send half a request head, stall;
      silent  finish the TLS handshake, send nothing.
With --reconnect each client connects again as soon as the server has closed
it, so COUNT hostile connections are held for the whole run. Every second it prints how many of the COUNT connections the server still
holds open and (with --pid) the server's RSS; with --probe it POSTs BODY_FILE
to /mutate on a fresh connection each second and prints the answer's status
and latency. Ends after HOLD_SECONDS, or as soon as the server has closed
every hostile connection; prints a SUMMARY line.
"""
import argparse
import asyncio
import ssl
import time

BODY_BYTES = 4 * 1024 * 1024


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return -1


def context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


async def hostile_forever(port, mode, opened, closed, until):
    while time.monotonic() < until:
        await hostile(port, mode, opened, closed)


async def hostile(port, mode, opened, closed):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context())
    except OSError:
        closed.append(time.monotonic())  # refused (e.g. over maxConnections)
        return
    opened.append(time.monotonic())
    try:
        if mode == "body":
            head = (f"POST /mutate?timeout=30s HTTP/1.1\r\nHost: localhost\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {BODY_BYTES}\r\n\r\n")
            writer.write(head.encode())
            chunk = b" " * 65536
            sent = 0
            while sent < BODY_BYTES - 1:
                n = min(len(chunk), BODY_BYTES - 1 - sent)
                writer.write(chunk[:n])
                await writer.drain()
                sent += n
        elif mode == "header":
            writer.write(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Ty")
            await writer.drain()
        # Stall: wait for the server to close (EOF) or reset.
        while await reader.read(65536):
            pass
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    closed.append(time.monotonic())
    writer.close()


async def probe(port, body):
    head = (f"POST /mutate?timeout=10s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=context()), 10)
        writer.write(head + body)
        await writer.drain()
        status = (await asyncio.wait_for(reader.readline(), 10)).decode().split(" ")[1]
        await asyncio.wait_for(reader.read(), 10)
        writer.close()
    except (OSError, ssl.SSLError, asyncio.TimeoutError, IndexError) as e:
        status = f"failed:{type(e).__name__}"
    return status, (time.monotonic() - start) * 1000


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("mode", choices=["body", "header", "silent"])
    p.add_argument("count", type=int)
    p.add_argument("hold", type=float)
    p.add_argument("--pid", type=int)
    p.add_argument("--probe")
    p.add_argument("--reconnect", action="store_true")
    a = p.parse_args()
    body = open(a.probe, "rb").read() if a.probe else None
    opened, closed = [], []
    start = time.monotonic()
    if a.reconnect:
        tasks = [asyncio.create_task(hostile_forever(a.port, a.mode, opened, closed, start + a.hold))
                 for _ in range(a.count)]
    else:
        tasks = [asyncio.create_task(hostile(a.port, a.mode, opened, closed)) for _ in range(a.count)]
    peak, probes = 0, []
    while True:
        await asyncio.sleep(1)
        t = time.monotonic() - start
        rss = rss_kib(a.pid) if a.pid else -1
        peak = max(peak, rss)
        line = (f"t={t:5.1f}s connected={len(opened)} closed_by_server={len(closed)}" if a.reconnect
                else f"t={t:5.1f}s open={a.count - len(closed):4d}")
        line += f" rss={rss} KiB" if a.pid else ""
        if body is not None:
            status, ms = await probe(a.port, body)
            probes.append((status, ms))
            line += f" probe={status} {ms:.0f} ms"
        print(line, flush=True)
        if (len(closed) == a.count and not a.reconnect) or t >= a.hold:
            break
    still = a.count - len(closed) if not a.reconnect else f"n/a(reconnects:{len(opened)})"
    last_close = (max(closed) - start) if closed else float("nan")
    answered = sum(1 for s, _ in probes if s == "200")
    worst = max((ms for _, ms in probes), default=float("nan"))
    print(f"SUMMARY mode={a.mode} count={a.count} still_open={still} last_closed_at={last_close:.1f}s "
          f"peak_rss_kib={peak} probes_answered={answered}/{len(probes)} worst_probe_ms={worst:.0f}", flush=True)
    for task in tasks:
        task.cancel()


import logging
logging.getLogger("asyncio").setLevel(logging.CRITICAL)
asyncio.run(main())
