#!/usr/bin/python3
"""examples/chat_server from the outside: the page over HTTP, the room over
WebSocket (Debian python3-websockets as the client), a client that never
reads, bad input, and the exit on SIGTERM.

  chat_check.py CHAT_SERVER [--deflate] [--quick]
  chat_check.py --url http://HOST:PORT/     (quick check of a running server)
  chat_check.py --url https://HOST:PORT/ [--ca FILE]   (the same over TLS: https
                                            and wss://; without --ca the
                                            certificate is not verified)

--quick (used by `make demo` as its self-check) does only: GET / is the page,
an unknown path is 404, and one WebSocket message comes back as a broadcast.
Loopback only; every step has a timeout. Exit 0 on success, 1 with a
FAIL: line otherwise."""
import asyncio
import http.client
import json
import re
import signal
import socket
import ssl
import sys

import websockets

import nfpeer

ARGS = sys.argv[1:]
DEFLATE = "--deflate" in ARGS
QUICK = "--quick" in ARGS or "--url" in ARGS
BACKEND = nfpeer.BACKEND
# --url https://...: TLS for the page and the WebSocket (set in main)
TLS = None


def ws_uri(port, path):
    return "%s://127.0.0.1:%d%s" % ("wss" if TLS else "ws", port, path)


fail = nfpeer.fail


def http_get(port, method, path, headers=None):
    if TLS:
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=TLS)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.getheader("Content-Type"), r.getheader("Content-Length"), body


def check_http(port):
    st, ct, cl, body = http_get(port, "GET", "/")
    if st != 200:
        fail("GET / -> %d" % st)
    if ct != "text/html; charset=utf-8":
        fail("GET / Content-Type %r" % ct)
    if cl is None or int(cl) != len(body):
        fail("GET / Content-Length %r for %d bytes" % (cl, len(body)))
    page = body.decode("utf-8")
    for needle in ("<title>netframe chat</title>", 'id="input"', 'id="stats"', "new WebSocket("):
        if needle not in page:
            fail("page lacks %r" % needle)
    # no external resources: no URL but data: ones in attributes, no @import
    for attr in re.findall(r'(?:src|href)\s*=\s*["\']?([^"\' >]*)', page):
        if not attr.startswith("data:"):
            fail("page refers to an outside resource (%r)" % attr)
    if "@import" in page or "url(" in page or "http://" in page or "https://" in page:
        fail("page refers to an outside resource")
    st, ct, _, body = http_get(port, "GET", "/no/such/page")
    if st != 404 or not ct.startswith("text/plain"):
        fail("GET /no/such/page -> %d %r" % (st, ct))
    if QUICK:
        return
    st, ct, cl, body = http_get(port, "HEAD", "/")
    if st != 200 or ct != "text/html; charset=utf-8" or body != b"" or int(cl) < 1000:
        fail("HEAD / -> %d %r %r %r" % (st, ct, cl, body[:20]))
    st, _, _, _ = http_get(port, "GET", "/?x=1")
    if st != 200:
        fail("GET /?x=1 -> %d" % st)
    st, _, _, _ = http_get(port, "POST", "/", {"Content-Length": "0"})
    if st != 405:
        fail("POST / -> %d" % st)
    st, _, _, _ = http_get(port, "GET", "/ws")  # /ws without an upgrade
    if st != 404:
        fail("GET /ws without upgrade -> %d" % st)


async def recv_json(ws, want_type, timeout=10):
    """Next message of type want_type (others are skipped)."""
    async def loop():
        while True:
            m = json.loads(await ws.recv())
            if m.get("type") == want_type:
                return m
    return await asyncio.wait_for(loop(), timeout)


async def expect_status(uri, status, **kw):
    try:
        async with websockets.connect(uri, open_timeout=10, **kw):
            pass
    except websockets.exceptions.InvalidStatusCode as e:
        if e.status_code != status:
            fail("%s: status %d, expected %d" % (uri, e.status_code, status))
        return
    fail("%s: upgrade accepted, expected %d" % (uri, status))


def connect(port, **kw):
    if TLS:
        kw.setdefault("ssl", TLS)
    return websockets.connect(ws_uri(port, "/ws"), open_timeout=10, close_timeout=10,
                              compression="deflate" if DEFLATE else None, **kw)


async def room(port, proc):
    a = await connect(port)
    b = await connect(port, origin="%s://127.0.0.1:%d" % ("https" if TLS else "http", port))  # what a browser sends
    if DEFLATE and "permessage-deflate" not in (a.response_headers.get("Sec-WebSocket-Extensions") or ""):
        fail("no permessage-deflate agreed")
    ida = (await recv_json(a, "hello"))["id"]
    idb = (await recv_json(b, "hello"))["id"]
    if ida == idb:
        fail("two clients got the same id")
    text = 'hi "there" \\ <b>é€😀</b>\n\ttab'
    await a.send(text)
    for who in (a, b):
        m = await recv_json(who, "chat")
        if m != {"type": "chat", "from": ida, "text": text}:
            fail("broadcast differs: %r" % m)
    if QUICK:
        await a.close()
        await b.close()
        return
    big = "x" * 3000
    await b.send(big)
    for who in (a, b):
        m = await recv_json(who, "chat")
        if m["from"] != idb or m["text"] != big:
            fail("long broadcast differs")
    s = await recv_json(a, "stats", timeout=10)
    if s["connections"] != 2 or s["msgs_in"] < 2 or s["msgs_out"] < 4 or s["bytes_in"] <= 0:
        fail("stats wrong: %r" % s)
    if s["policy"] != "drop-oldest" or s["deflate"] != DEFLATE or len(s["loops"]) != 1:
        fail("stats wrong: %r" % s)
    if s["loops"][0]["backend"] not in ("io_uring", "epoll"):
        fail("stats backend %r" % s["loops"][0]["backend"])
    # cross-site WebSocket requests and wrong paths are refused
    await expect_status("ws://127.0.0.1:%d/ws" % port, 403, origin="http://evil.example")
    await expect_status("ws://127.0.0.1:%d/other" % port, 404)
    # bad input closes only that connection, with the right code
    c = await connect(port)
    await recv_json(c, "hello")
    await c.send(b"\x00binary")
    await expect_close(c, 1003, "binary message")
    d = await connect(port, max_size=None)
    await recv_json(d, "hello")
    await d.send("y" * 5000)  # longer than the server's 4096-byte limit
    await expect_close(d, 1009, "oversized message")
    await a.send("still here")
    for who in (a, b):
        m = await recv_json(who, "chat")
        if m["text"] != "still here":
            fail("room broken after bad input")
    await slow_reader(port, a)
    # SIGTERM: both get 1001 and the server exits 0
    proc.send_signal(signal.SIGTERM)
    for who in (a, b):
        await expect_close(who, 1001, "on SIGTERM")


async def expect_close(ws, code, what):
    """Reads what is left until the server closes ws, which must close with
    `code`."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except websockets.exceptions.ConnectionClosed:
        pass
    if ws.close_code != code:
        fail("%s: close %r, expected %d" % (what, ws.close_code, code))


async def slow_reader(port, a):
    """A client that completes the handshake and then never reads: the
    broadcasts to it are held, then the oldest are dropped; the server's
    held bytes stay under the configured bound (--max-held-kb 32) and the
    room goes on."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    if not head.startswith(b"HTTP/1.1 101"):
        fail("slow reader handshake: %r" % head[:40])
    chunk = "z" * 4000
    n = 0
    for _ in range(60):  # ~ 8 MB to the slow reader, enough to fill the kernel's buffers
        for _ in range(32):
            await a.send(chunk)
            n += 1
        st = await recv_json(a, "stats", timeout=10)
        if st["writes_dropped"] > 0:
            break
    else:
        fail("no writes dropped for a client that never reads: %r" % st)
    if st["writes_held"] == 0 or st["held_bytes_hwm"] > 32 * 1024 + 5000:
        fail("held bytes not bounded: %r" % st)
    if st["connections"] != 3:
        fail("the slow reader was closed (drop-oldest keeps it): %r" % st)
    print("slow reader: %d messages sent, held hwm %d bytes, %d writes dropped"
          % (n, st["held_bytes_hwm"], st["writes_dropped"]), flush=True)
    s.close()


def main():
    global TLS
    if ARGS and ARGS[0] == "--url":
        url = ARGS[1].rstrip("/")
        if url.startswith("https://"):
            ca = ARGS[ARGS.index("--ca") + 1] if "--ca" in ARGS else None
            TLS = ssl.create_default_context(cafile=ca)
            if not ca:
                TLS.check_hostname = False
                TLS.verify_mode = ssl.CERT_NONE
        port = int(url.rsplit(":", 1)[1])
        check_http(port)
        asyncio.run(room(port, None))
        print("ok: page served, 404 for unknown paths, a message went round the room", flush=True)
        return
    server = ARGS[0]
    cmd = [server, "--port", "0", "--backend", BACKEND, "--stats-ms", "200", "--max-held-kb", "32"]
    proc, port = nfpeer.start(cmd + (["--deflate"] if DEFLATE else []))
    try:
        check_http(port)
        asyncio.run(room(port, proc))
        if QUICK:
            proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=15)
        if rc != 0:
            fail("server exited %d after SIGTERM" % rc)
        proc = None
        print("ok", flush=True)
    finally:
        if proc:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
