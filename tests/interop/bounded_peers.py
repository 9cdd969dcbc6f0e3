#!/usr/bin/python3
"""Issue 13: four peers that push and never read must not grow a server.

    bounded_peers.py KIND SERVER_BINARY

KIND is tcp (echo_server, or the README's echo snippet with --readme), tls
(echo_server with the TLS filter and a throwaway certificate from openssl
req), ws (ws_echo_server), chat (chat_server) or udp (udp_echo_server). The backend
comes from NF_BACKEND (the servers leave theirs at auto).

The server starts on a free port (the README snippet listens on 7000: when
that port is taken the test runs itself in a fresh network namespace). A good
client checks the server answers; the server's VmRSS is read; four peers then
push data (TCP: 64 KiB writes; WebSocket: 4000-byte masked frames; UDP:
1200-byte datagrams) on non-blocking sockets for FLOOD_SECONDS (4) or until
each pushed 512 MiB, and never read. Meanwhile the good client keeps
verifying its echoes (chat: its own line broadcast back, which the room's
drop-oldest policy may discard under the flood: one that made it, or a room
that kept reaching it, is enough, and after the flood its line must come
back). The server's VmRSS, sampled every 100 ms, must not grow
by MAX_GROWTH_MIB (16) or more. The server is stopped by its PID (SIGTERM)
and must exit 0 (the README snippet has no signal handler: it must die of
that SIGTERM, nothing else).
"""
import base64
import os
import random
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

FLOOD_SECONDS = float(os.environ.get("FLOOD_SECONDS", "4"))
PEER_LIMIT = 512 << 20
PEERS = 4
MAX_GROWTH_MIB = float(os.environ.get("MAX_GROWTH_MIB", "16"))


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


TLS_CTX = None


def tls_wrap(sock):
    return TLS_CTX.wrap_socket(sock, server_hostname="localhost")


def free_port(kind):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---- WebSocket framing (client side: masked frames) -------------------------

def ws_frame(opcode, payload, key=None):
    key = key if key is not None else os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    if key == b"\0\0\0\0":
        return head + key + payload
    masked = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return head + key + masked


def ws_handshake(sock, path):
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1\r\n\r\n"
                  % (path, key)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(4096)
        if not d:
            fail("WebSocket handshake: connection closed")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        fail("WebSocket handshake: %r" % head[:80])
    return rest


class WsReader:
    def __init__(self, sock, rest=b""):
        self.sock, self.buf = sock, rest

    def frame(self):
        """Returns (opcode, payload) of the next frame (server frames are unmasked)."""
        while True:
            if len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                n, off = b1 & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    n, off = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127 and len(self.buf) >= 10:
                    n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
                if (b1 & 0x7F) < 126 or off > 2:
                    if len(self.buf) >= off + n:
                        p = self.buf[off:off + n]
                        self.buf = self.buf[off + n:]
                        return b0 & 0x0F, p
            d = self.sock.recv(1 << 16)
            if not d:
                fail("good client: the server closed its connection")
            self.buf += d


# ---- the good client -----------------------------------------------------------

class Good:
    def __init__(self, kind, port):
        self.kind, self.port, self.ok, self.n = kind, port, 0, 0
        if kind == "udp":
            self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.s.connect(("127.0.0.1", port))
            self.s.settimeout(0.5)
            return
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s.settimeout(10)
        if kind == "tls":
            self.s = tls_wrap(self.s)
        if kind in ("ws", "chat"):
            rest = ws_handshake(self.s, "/ws" if kind == "chat" else "/")
            self.r = WsReader(self.s, rest)

    def round_trip(self):
        """One verified echo; returns True, or False (UDP loss, chat drop) after a timeout."""
        self.n += 1
        token = ("good-%d-%08x-" % (self.n, random.getrandbits(32))).encode()
        if self.kind in ("tcp", "tls"):
            msg = token * (4096 // len(token))
            self.s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                d = self.s.recv(len(msg) - len(got))
                if not d:
                    fail("good client: EOF from the echo server")
                got += d
            if got != msg:
                fail("good client: echo differs")
            self.ok += 1
            return True
        if self.kind == "udp":
            msg = token * 20
            for _ in range(5):
                self.s.send(msg)
                end = time.time() + 0.5
                while time.time() < end:
                    try:
                        d = self.s.recv(65536)
                    except socket.timeout:
                        break
                    if d == msg:
                        self.ok += 1
                        return True
            return False
        if self.kind == "ws":
            msg = token * (1000 // len(token))
            self.s.sendall(ws_frame(2, msg))
            while True:
                op, p = self.r.frame()
                if op == 2:
                    if p != msg:
                        fail("good client: WebSocket echo differs")
                    self.ok += 1
                    return True
                if op == 8:
                    fail("good client: close frame from the server")
        # chat: our line comes back inside a broadcast; drop-oldest may
        # discard it when the room floods, so retry. The stream is scanned
        # raw (the server's frames are not masked, the line is plain ASCII):
        # parsing frame by frame in Python is too slow to keep up.
        msg = token * (200 // len(token))
        self.s.sendall(ws_frame(1, msg))
        end = time.time() + 1.5
        self.s.settimeout(1.5)
        tail = self.r.buf
        self.r.buf = b""
        while time.time() < end:
            if msg in tail:
                self.ok += 1
                return True
            try:
                d = self.s.recv(1 << 20)
            except socket.timeout:
                continue
            if not d:
                fail("good client: the chat server closed its connection")
            self.room_bytes = getattr(self, "room_bytes", 0) + len(d)
            tail = tail[-len(msg):] + d
        return False


# ---- the peers that never read ----------------------------------------------------

class Flooder:
    def __init__(self, kind, port):
        self.kind, self.sent, self.blocked = kind, 0, 0
        if kind == "udp":
            self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.s.connect(("127.0.0.1", port))
            self.s.setblocking(False)
            self.chunk = os.urandom(1200)
            return
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if kind == "tls":
            self.s = tls_wrap(self.s)
        if kind in ("ws", "chat"):
            ws_handshake(self.s, "/ws" if kind == "chat" else "/")
            text = ("x" * 4000).encode()
            # zero masking key: the payload goes as is (cheap to make in Python)
            one = ws_frame(1 if kind == "chat" else 2, text, b"\0\0\0\0")
            self.chunk = one * 16
        else:
            self.chunk = os.urandom(65536)
        self.s.setblocking(False)
        self.pos = 0

    def push(self):
        if self.sent >= PEER_LIMIT:
            return
        try:
            if self.kind == "udp":
                self.s.send(self.chunk)
                self.sent += len(self.chunk)
                return
            n = self.s.send(self.chunk[self.pos:] if self.pos else self.chunk)
            self.sent += n
            self.pos = (self.pos + n) % len(self.chunk)
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            self.blocked += 1
        except ConnectionRefusedError:
            pass  # UDP: an ICMP error from an earlier datagram


def run(kind, binary, readme):
    port = 7000 if readme else free_port(kind)
    args = [binary] if readme else [binary, "--port", str(port)]
    if kind == "tls":
        global TLS_CTX
        d = tempfile.mkdtemp(prefix="nf_bounded_")
        cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        args += ["--tls-cert", cert, "--tls-key", key]
        TLS_CTX = ssl.create_default_context(cafile=cert)
    if kind == "udp":
        args += ["--host", "127.0.0.1"]
    srv = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        good = None
        deadline = time.time() + 10
        while good is None:
            if srv.poll() is not None:
                fail("server exited early (%s): %s" % (srv.returncode, srv.stderr.read().decode(errors="replace")))
            try:
                good = Good(kind, port)
                if kind == "udp" and not good.round_trip():
                    good = None
                    raise ConnectionRefusedError
            except (ConnectionRefusedError, socket.timeout, OSError):
                good = None
                if time.time() > deadline:
                    fail("server did not come up on port %d" % port)
                time.sleep(0.05)
        for _ in range(3):
            if not good.round_trip():
                fail("good client: no echo before the flood")
        time.sleep(0.2)
        before = rss_kib(srv.pid)

        flood = [Flooder(kind, port) for _ in range(PEERS)]
        peak = before
        good_ok0, good_fail = good.ok, 0
        t0 = time.time()
        next_sample = t0
        next_good = t0
        while time.time() - t0 < FLOOD_SECONDS:
            for f in flood:
                for _ in range(8):
                    f.push()
            now = time.time()
            if now >= next_sample:
                peak = max(peak, rss_kib(srv.pid))
                next_sample = now + 0.1
            if now >= next_good:
                if not good.round_trip():
                    good_fail += 1
                next_good = time.time() + 0.05
            if all(f.sent >= PEER_LIMIT for f in flood):
                break
        peak = max(peak, rss_kib(srv.pid))
        time.sleep(0.3)
        after = rss_kib(srv.pid)
        peak = max(peak, after)
        pushed = sum(f.sent for f in flood)
        good_ok = good.ok - good_ok0
        print("%s %s backend=%s: peers pushed %.1f MiB in %.1f s (never reading); server VmRSS before %d KiB, "
              "peak %d KiB, after %d KiB: growth %.1f MiB (peak); good client: %d verified round trips, %d retries"
              % (kind, "README snippet" if readme else os.path.basename(binary), os.environ.get("NF_BACKEND", "auto"),
                 pushed / 1048576.0, time.time() - t0, before, peak, after, (peak - before) / 1024.0, good_ok,
                 good_fail), flush=True)
        if (peak - before) / 1024.0 >= MAX_GROWTH_MIB:
            fail("server RSS grew by %.1f MiB (limit %.0f MiB)" % ((peak - before) / 1024.0, MAX_GROWTH_MIB))
        # chat: every line is broadcast to five clients, and when the room
        # floods the good client's own line often waits behind 256 KiB of
        # others' and is discarded by drop-oldest (the policy at work): it
        # keeps working if either a line of its own made it, or it kept
        # receiving the room (and its line makes it after the flood, below)
        if kind == "chat":
            room = getattr(good, "room_bytes", 0)
            print("chat: the good client received %.1f MiB of the room during the flood" % (room / 1048576.0))
            if good_ok < 1 and room < (1 << 20):
                fail("the good client neither saw its line nor received the room during the flood")
        elif good_ok < 3:
            fail("the good client completed only %d round trips during the flood" % good_ok)
        # still alive and answering after the flood
        if not good.round_trip() and not good.round_trip():
            fail("good client: no echo after the flood")
        for f in flood:
            f.s.close()
        good.s.close()
    finally:
        if srv.poll() is None:
            srv.send_signal(signal.SIGTERM)
        try:
            rc = srv.wait(timeout=15)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
            fail("server did not exit within 15 s of SIGTERM")
    if readme:
        if rc != -signal.SIGTERM:
            fail("README echo server: exit status %s, expected death by SIGTERM" % rc)
    elif rc != 0:
        fail("server exit status %s (stderr: %s)" % (rc, srv.stderr.read().decode(errors="replace")[-500:]))
    print("ok")


def main():
    argv = sys.argv[1:]
    readme = "--readme" in argv
    argv = [a for a in argv if a != "--readme"]
    if len(argv) != 2 or argv[0] not in ("tcp", "tls", "ws", "chat", "udp"):
        fail("usage: bounded_peers.py tcp|tls|ws|chat|udp SERVER [--readme]")
    if readme and not os.environ.get("NF_BOUNDED_NETNS"):
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.1", 7000))
            probe.close()
        except OSError:  # 7000 is taken here: a network namespace of our own
            probe.close()
            os.environ["NF_BOUNDED_NETNS"] = "1"
            os.execvp("unshare", ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                                  sys.executable] + sys.argv)
    run(argv[0], argv[1], readme)


if __name__ == "__main__":
    main()
