#!/usr/bin/python3
"""examples/pubsub_room with Python's websockets clients (Debian 10.4).

Usage: pubsub_room.py PUBSUB_ROOM THREADS [deflate]

Two rooms, clients spread over the server's loops: every client of a room
gets every message of its room exactly once (the sender's own included), each
sender's messages in the order sent, none of the other room; a client that
leaves in the middle does not disturb the others; binary frames stay binary;
SIGTERM ends the server with exit status 0. NF_BACKEND picks the backend.
With "deflate" the server runs --deflate and the clients offer
permessage-deflate (every other one does not): messages long enough come
compressed once for all of them."""
import asyncio
import os
import signal
import subprocess
import sys

import websockets

ROOMS = {"alpha": 6, "beta": 3}
PER_SENDER = 60
TIMEOUT = 30


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


DEFLATE = len(sys.argv) > 3 and sys.argv[3] == "deflate"


async def client(url, room, idx, expected, start, results, leaver=False):
    comp = "deflate" if DEFLATE and idx % 2 == 0 else None
    # the leaver's queue unbounded: with websockets' default (32 messages) its
    # reader stops while it closes, and it waits close_timeout (10 s) for a
    # close frame that sits behind the messages it no longer reads
    queue = None if leaver else 32
    async with websockets.connect(url, max_size=None, max_queue=queue, compression=comp) as ws:
        if comp and not any(e.name == "permessage-deflate" for e in ws.extensions):
            fail("permessage-deflate not agreed")
        await start.wait()
        seen = {}  # sender -> last seq
        got = 0

        async def sender():
            for k in range(PER_SENDER):
                msg = "%s:%d:%d:" % (room, idx, k) + "compressible " * (k % 5)
                if k % 10 == 9:
                    await ws.send(msg.encode())  # binary
                else:
                    await ws.send(msg)
                if k % 7 == 0:
                    await asyncio.sleep(0)

        task = asyncio.ensure_future(sender()) if not leaver else None
        limit = 25 if leaver else expected
        while got < limit:
            m = await asyncio.wait_for(ws.recv(), TIMEOUT)
            text = m.decode() if isinstance(m, bytes) else m
            r, s, k, _ = text.split(":")
            s, k = int(s), int(k)
            if r != room:
                fail("client %s/%d got a message of room %s" % (room, idx, r))
            if isinstance(m, bytes) != (k % 10 == 9):
                fail("client %s/%d: frame type changed for %s" % (room, idx, text))
            if seen.get(s, -1) != k - 1:
                fail("client %s/%d: from %d got %d after %d (lost, duplicated or reordered)"
                     % (room, idx, s, k, seen.get(s, -1)))
            seen[s] = k
            got += 1
        if leaver:
            return  # closes in the middle of the traffic
        await task
        # exactly once: nothing more may come
        try:
            extra = await asyncio.wait_for(ws.recv(), 0.5)
            fail("client %s/%d: an extra message %r" % (room, idx, extra))
        except asyncio.TimeoutError:
            pass
        if any(v != PER_SENDER - 1 for v in seen.values()) or len(seen) != ROOMS[room]:
            fail("client %s/%d: incomplete %r" % (room, idx, seen))
        results.append((room, idx, got))


async def main(port):
    start = asyncio.Event()
    results = []
    tasks = []
    for room, n in ROOMS.items():
        for i in range(n):
            tasks.append(client("ws://127.0.0.1:%d/%s" % (port, room), room, i, n * PER_SENDER, start, results))
    # a subscriber of alpha that reads a little, then goes away
    tasks.append(client("ws://127.0.0.1:%d/alpha" % port, "alpha", 99, 0, start, results, leaver=True))
    futs = [asyncio.ensure_future(t) for t in tasks]
    await asyncio.sleep(0.5)  # every client connected and subscribed
    start.set()
    await asyncio.gather(*futs)
    if len(results) != sum(ROOMS.values()):
        fail("only %d clients finished" % len(results))


def run():
    exe, threads = sys.argv[1], sys.argv[2]
    backend = os.environ.get("NF_BACKEND", "auto")
    extra = ["--deflate"] if DEFLATE else []
    p = subprocess.Popen([exe, "--port", "0", "--threads", threads, "--backend", backend] + extra,
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        if not line.startswith("listening on "):
            fail("unexpected first line %r" % line)
        port = int(line.rsplit(":", 1)[1])
        asyncio.get_event_loop().run_until_complete(main(port))
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            fail("pubsub_room did not stop on SIGTERM")
    if rc != 0:
        fail("pubsub_room exited with %d" % rc)
    print("OK: %d clients, %d messages each, threads=%s backend=%s deflate=%s"
          % (sum(ROOMS.values()), PER_SENDER, threads, backend, DEFLATE))


run()
