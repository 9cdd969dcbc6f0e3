#!/usr/bin/python3
"""Ping flood against a WebSocket server, measuring the server's RSS (issue 13).

    bench/ping_flood.py SERVER_PID [--port 8080] [--path /ws] [--seconds 4]
                        [--size 0] [--rcvbuf 4096] [--tls]

Opens one WebSocket connection, then sends masked ping frames with `--size`
bytes of payload non-stop for `--seconds`, never reading what the server
sends (--tls: over TLS, for chat_server --tls-cert; the certificate is not
checked). Prints the server's VmRSS (from /proc/SERVER_PID/status) before, every
half second, and at the end, with the bytes sent. Standard library only; run
it with /usr/bin/python3.
"""
import argparse
import base64
import os
import socket
import ssl
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pid", type=int)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--path", default="/ws")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--size", type=int, default=0, help="ping payload, 0..125")
    ap.add_argument("--rcvbuf", type=int, default=4096, help="our receive buffer (a small TCP window)")
    ap.add_argument("--tls", action="store_true")
    a = ap.parse_args()
    if not 0 <= a.size <= 125:
        sys.exit("--size: 0..125")

    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
    s.connect((a.host, a.port))
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname="localhost")
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {a.path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            sys.exit("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        sys.exit("handshake refused: " + head.split(b"\r\n")[0].decode())

    mask = os.urandom(4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"p" * a.size))
    frame = bytes([0x89, 0x80 | a.size]) + mask + payload
    batch = frame * (65536 // len(frame))
    s.settimeout(0.1)

    before = rss_kib(a.pid)
    print(f"before: VmRSS {before} KiB", flush=True)
    sent, start, next_report, peak = 0, time.monotonic(), 0.5, before
    end = start + a.seconds
    state = "open"
    while time.monotonic() < end:
        try:
            sent += s.send(batch)
        except (socket.timeout, ssl.SSLWantWriteError):
            pass  # the server stopped reading us: our window is closed
        except OSError as e:
            state = f"closed by the server ({e.strerror})"
            break
        t = time.monotonic() - start
        if t >= next_report:
            r = rss_kib(a.pid)
            peak = max(peak, r)
            print(f"{t:5.1f} s: sent {sent / 2**20:8.1f} MiB, VmRSS {r} KiB", flush=True)
            next_report += 0.5
    after = rss_kib(a.pid)
    peak = max(peak, after)
    print(f"after {time.monotonic() - start:.1f} s: sent {sent / 2**20:.1f} MiB of {len(frame)}-byte pings "
          f"({sent // len(frame)} pings), connection {state}; VmRSS {before} -> {after} KiB (peak {peak} KiB)")
    s.close()


if __name__ == "__main__":
    main()
