#!/usr/bin/python3
"""Interop with Python's websockets (Debian python3-websockets), both ways.

  py_interop.py MODE WS_ECHO_SERVER WS_CLIENT

MODE: py_client, py_client_deflate (websockets client -> ws_echo_server),
      py_server, py_server_deflate (ws_client -> websockets echo server).
Loopback only; every step has a timeout. Exit 0 on success."""
import asyncio
import subprocess
import sys

import websockets

import nfpeer

MODE, SERVER, CLIENT = sys.argv[1], sys.argv[2], sys.argv[3]
DEFLATE = MODE.endswith("_deflate")
BACKEND = nfpeer.BACKEND
fail = nfpeer.fail


async def client_side():
    proc, port = nfpeer.start([SERVER, "--port", "0", "--backend", BACKEND] + (["--deflate"] if DEFLATE else []))
    try:
        uri = "ws://127.0.0.1:%d/any/path?q=1" % port
        async with websockets.connect(uri, compression="deflate" if DEFLATE else None, max_size=None,
                                      open_timeout=10, close_timeout=10) as ws:
            ext = ws.response_headers.get("Sec-WebSocket-Extensions")
            if DEFLATE and not (ext and "permessage-deflate" in ext):
                fail("no permessage-deflate in %r" % ext)
            if not DEFLATE and ext:
                fail("unexpected extensions %r" % ext)
            for n in (0, 1, 125, 126, 127, 65535, 65536, 300000):
                text = "".join(chr(0x61 + (i * 7) % 26) for i in range(n)) + ("é€😀" if n else "")
                await ws.send(text)
                got = await asyncio.wait_for(ws.recv(), 10)
                if got != text:
                    fail("text echo of %d chars differs" % n)
                data = bytes((i * 31 + n) & 0xFF for i in range(n))
                await ws.send(data)
                got = await asyncio.wait_for(ws.recv(), 10)
                if got != data:
                    fail("binary echo of %d bytes differs" % n)
            # a fragmented message (websockets sends an iterable as fragments)
            parts = ["part%d-" % i * 100 for i in range(5)]
            await ws.send(parts)
            got = await asyncio.wait_for(ws.recv(), 10)
            if got != "".join(parts):
                fail("fragmented echo differs")
            pong = await ws.ping(b"hi")
            await asyncio.wait_for(pong, 10)
            await ws.close(1000, "bye")
            if ws.close_code != 1000:
                fail("close code %r" % ws.close_code)
        # a plain HTTP request gets the small page
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(r.read(4096), 10)
        if not head.startswith(b"HTTP/1.1 200 "):
            fail("plain HTTP: %r" % head[:60])
        w.close()
        # a bad upgrade gets 426
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n\r\n")
        head = await asyncio.wait_for(r.read(4096), 10)
        if not head.startswith(b"HTTP/1.1 426 ") or b"Sec-WebSocket-Version: 13" not in head:
            fail("426: %r" % head[:120])
        w.close()
    finally:
        nfpeer.stop(proc)


async def server_side():
    seen = {}

    async def echo(ws, path=None):
        seen["ext"] = [type(e).__name__ for e in ws.extensions]
        seen["path"] = ws.path
        async for msg in ws:
            await ws.send(msg)

    async with websockets.serve(echo, "127.0.0.1", 0, compression="deflate" if DEFLATE else None,
                                max_size=None) as srv:
        port = srv.sockets[0].getsockname()[1]
        msgs = ["hello", "wörld 😀", "x" * 70000, "y" * 126]
        args = [CLIENT, "--backend", BACKEND, "--wait", "10000"] + (["--deflate"] if DEFLATE else [])
        proc = await asyncio.create_subprocess_exec(*args, "ws://127.0.0.1:%d/chat?room=1" % port, *msgs,
                                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        sys.stdout.write(err.decode())
        if proc.returncode != 0:
            fail("ws_client exit %d" % proc.returncode)
        if out.decode().split("\n")[:-1] != msgs:
            fail("ws_client printed %r" % out[:200])
        if seen.get("path") != "/chat?room=1":
            fail("path %r" % seen.get("path"))
        if DEFLATE != bool(seen.get("ext")):
            fail("extensions %r" % seen.get("ext"))
        # binary, from stdin
        proc = await asyncio.create_subprocess_exec(*args, "--binary", "ws://127.0.0.1:%d/" % port,
                                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(b"one\ntwo\n"), 30)
        if proc.returncode != 0 or out.decode() != "[binary 3 bytes]\n[binary 3 bytes]\n":
            fail("binary from stdin: %d %r %r" % (proc.returncode, out, err))


async def main():
    if MODE.startswith("py_client"):
        await client_side()
    elif MODE.startswith("py_server"):
        await server_side()
    else:
        fail("unknown mode " + MODE)
    print("ok", MODE, flush=True)


asyncio.run(asyncio.wait_for(main(), 50))
