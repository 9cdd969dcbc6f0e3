#!/usr/bin/python3
"""A chat-room load for pubsub_room (not a test: a driver for measurements).

Usage: pubsub_load.py PORT [CLIENTS=32] [ROUNDS=100] [SIZE=64]

CLIENTS clients join /room; each round every client sends one SIZE-byte text
message and waits until it has received the round's CLIENTS messages (its
own included). Prints the deliveries counted by the clients."""
import asyncio
import sys

import websockets


async def client(url, idx, n, rounds, size, ready, go, counts):
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        ready.append(idx)
        await go.wait()
        got = 0
        for r in range(rounds):
            msg = ("%d:%d:" % (idx, r)).ljust(size, "x")
            await ws.send(msg)
            want = (r + 1) * n
            while got < want:
                await asyncio.wait_for(ws.recv(), 30)
                got += 1
        counts.append(got)


async def main():
    port = int(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 64
    ready, counts = [], []
    go = asyncio.Event()
    url = "ws://127.0.0.1:%d/room" % port
    tasks = [asyncio.ensure_future(client(url, i, n, rounds, size, ready, go, counts)) for i in range(n)]
    while len(ready) < n:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    go.set()
    await asyncio.gather(*tasks)
    print("deliveries %d" % sum(counts))


asyncio.get_event_loop().run_until_complete(main())
