#!/usr/bin/python3
"""permessage-deflate messages that end with a BFINAL block (RFC 7692 7.2.3.4),
sent by Python's websockets (Debian python3-websockets) with its compressor
swapped for one that ends every message with zlib's Z_FINISH.

  py_bfinal.py MODE WS_ECHO_SERVER WS_CLIENT

MODE: bfinal_client (websockets client -> ws_echo_server --deflate),
      bfinal_server (ws_client --deflate -> websockets echo server).
Messages alternate between a bare final block and one followed by the single
0x00 octet the RFC allows; with and without context takeover. bfinal_client
also sends a final block followed by garbage and expects close 1007.
Loopback only; every step has a timeout. Exit 0 on success."""
import asyncio
import dataclasses
import subprocess
import sys
import zlib

import websockets

import nfpeer
from websockets.extensions.permessage_deflate import (ClientPerMessageDeflateFactory, PerMessageDeflate,
                                                      ServerPerMessageDeflateFactory)
from websockets.frames import CTRL_OPCODES, OP_CONT

MODE, SERVER, CLIENT = sys.argv[1], sys.argv[2], sys.argv[3]
BACKEND = nfpeer.BACKEND
fail = nfpeer.fail


class FinalBlockDeflate(PerMessageDeflate):
    """Compresses each message as a deflate stream of its own, ended with a
    BFINAL block (Z_FINISH), then a 0x00 octet every other message. The
    negotiated parameters still hold: the receiver must cope whether it keeps
    its window or not. `garbage` is appended to the next message instead."""

    count = 0
    garbage = None

    def encode(self, frame):
        if frame.opcode in CTRL_OPCODES:
            return frame
        if frame.opcode is OP_CONT or not frame.fin:
            raise AssertionError("only whole messages here")
        z = zlib.compressobj(6, zlib.DEFLATED, -self.local_max_window_bits)
        data = z.compress(frame.data) + z.flush(zlib.Z_FINISH)
        FinalBlockDeflate.count += 1
        if FinalBlockDeflate.garbage is not None:
            data += FinalBlockDeflate.garbage
        elif FinalBlockDeflate.count % 2 == 0:
            data += b"\x00"
        return dataclasses.replace(frame, rsv1=True, data=data)


def final_block(ext):
    ext.__class__ = FinalBlockDeflate
    return ext


class ClientFactory(ClientPerMessageDeflateFactory):
    def process_response_params(self, params, accepted):
        return final_block(super().process_response_params(params, accepted))


class ServerFactory(ServerPerMessageDeflateFactory):
    def process_request_params(self, params, accepted):
        resp, ext = super().process_request_params(params, accepted)
        return resp, final_block(ext)


def messages():
    yield "Hello"
    yield ""
    yield b"\x00\x01\x02" * 400
    yield "".join(chr(0x61 + (i * 7) % 26) for i in range(70000)) + "é€😀"  # > 16 KiB inflated
    yield "Hello, Hello, Hello, Hello"  # refers to nothing before: a new stream
    yield bytes((i * 31) & 0xFF for i in range(5000))


async def client_side():
    proc, port = nfpeer.start([SERVER, "--port", "0", "--backend", BACKEND, "--deflate"])
    try:
        uri = "ws://127.0.0.1:%d/" % port
        for no_takeover in (False, True):
            FinalBlockDeflate.garbage = None
            factory = ClientFactory(client_no_context_takeover=no_takeover)
            async with websockets.connect(uri, extensions=[factory], compression=None, max_size=None,
                                          open_timeout=10, close_timeout=10) as ws:
                if not isinstance(ws.extensions[0], FinalBlockDeflate):
                    fail("extension %r" % ws.extensions)
                for rep in range(2):
                    for msg in messages():
                        await ws.send(msg)
                        got = await asyncio.wait_for(ws.recv(), 10)
                        if got != msg:
                            fail("echo of %d %s differs (no_takeover=%s)" % (len(msg), type(msg).__name__,
                                                                             no_takeover))
                await ws.close(1000, "bye")
                if ws.close_code != 1000:
                    fail("close code %r" % ws.close_code)
            print("ok: %d messages, client_no_context_takeover=%s" % (FinalBlockDeflate.count, no_takeover),
                  flush=True)
        # garbage after the final block: the server fails the connection with 1007
        for garbage in (b"\x01", b"\x00\x00", b"\x00\x00\xff\xff"):
            async with websockets.connect(uri, extensions=[ClientFactory()], compression=None, open_timeout=10,
                                          close_timeout=10) as ws:
                await ws.send("fine")
                if await asyncio.wait_for(ws.recv(), 10) != "fine":
                    fail("echo before the garbage")
                FinalBlockDeflate.garbage = garbage
                await ws.send("Hello, then garbage")
                try:
                    got = await asyncio.wait_for(ws.recv(), 10)
                    fail("garbage %r echoed as %r" % (garbage, got))
                except websockets.ConnectionClosed:
                    pass
                if ws.close_code != 1007:
                    fail("garbage %r: close code %r" % (garbage, ws.close_code))
            FinalBlockDeflate.garbage = None
        print("ok: garbage after the final block is 1007", flush=True)
    finally:
        nfpeer.stop(proc)


async def server_side():
    async def echo(ws, path=None):
        if not isinstance(ws.extensions[0], FinalBlockDeflate):
            await ws.close(1011, "no final-block extension")
            return
        async for msg in ws:
            await ws.send(msg)

    for no_takeover in (False, True):
        factory = ServerFactory(server_no_context_takeover=no_takeover)
        async with websockets.serve(echo, "127.0.0.1", 0, extensions=[factory], compression=None,
                                    max_size=None) as srv:
            port = srv.sockets[0].getsockname()[1]
            msgs = ["Hello", "x" * 70000, "Hello, Hello, Hello, Hello", "wörld 😀" * 300, "y" * 126, "z"]
            proc = await asyncio.create_subprocess_exec(CLIENT, "--backend", BACKEND, "--wait", "10000", "--deflate",
                                                        "ws://127.0.0.1:%d/" % port, *msgs, stdout=subprocess.PIPE,
                                                        stderr=subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            sys.stdout.write(err.decode())
            if proc.returncode != 0:
                fail("ws_client exit %d (server_no_context_takeover=%s)" % (proc.returncode, no_takeover))
            if out.decode().split("\n")[:-1] != msgs:
                fail("ws_client printed %r" % out[:200])
        print("ok: %d messages, server_no_context_takeover=%s" % (FinalBlockDeflate.count, no_takeover), flush=True)


async def main():
    if MODE == "bfinal_client":
        await client_side()
    elif MODE == "bfinal_server":
        await server_side()
    else:
        fail("unknown mode " + MODE)
    print("ok", MODE, flush=True)


asyncio.run(asyncio.wait_for(main(), 50))
