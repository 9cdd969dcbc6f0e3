#!/usr/bin/python3
"""UDP interop with Python's own socket module (issue 8).

  udp_interop.py client UDP_ECHO_SERVER
      starts netframe's udp_echo_server (port 0, 2 threads: one SO_REUSEPORT
      socket per loop), sends datagrams of 0..1400 bytes and one of 65,507
      from 16 sockets, checks every echo byte for byte, stops the server
      with SIGTERM and checks its exit status and counters.
  udp_interop.py server
      an echo server for the C test (test_udp_python): prints "port N",
      echoes every datagram, exits on the datagram b"quit".
"""
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time


def client(server_bin):
    p = subprocess.Popen([server_bin, "--port", "0", "--threads", "2", "--recv-size", "65507",
                          "--rcvbuf", "4194304"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        m = re.search(r"listening on ([0-9.]+):(\d+) udp", line)
        if not m:
            print("no listening line:", line, p.stderr.read(), file=sys.stderr)
            return 1
        addr = (m.group(1), int(m.group(2)))
        socks = []
        for _ in range(16):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            socks.append(s)
        sizes = [0, 1, 64, 512, 1400, 65507]
        sent = 0
        expect = {}
        for i, s in enumerate(socks):
            for k, n in enumerate(sizes):
                payload = bytes([(i * 7 + k + j) % 251 for j in range(n)])
                s.sendto(payload, addr)
                expect.setdefault(i, []).append(payload)
                sent += 1
        got = 0
        deadline = time.time() + 10
        pending = {i: list(v) for i, v in expect.items()}
        while got < sent and time.time() < deadline:
            r, _, _ = select.select(socks, [], [], 0.2)
            for s in r:
                i = socks.index(s)
                while True:
                    try:
                        data, frm = s.recvfrom(70000)
                    except BlockingIOError:
                        break
                    if frm != addr:
                        print("echo from", frm, "expected", addr, file=sys.stderr)
                        return 1
                    if data not in pending[i]:
                        print("socket", i, "got an unexpected datagram of", len(data), "bytes", file=sys.stderr)
                        return 1
                    pending[i].remove(data)
                    got += 1
        if got != sent:
            print("echoed", got, "of", sent, file=sys.stderr)
            return 1
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
        if p.returncode != 0:
            print("server exit", p.returncode, err, file=sys.stderr)
            return 1
        m = re.search(r"dgrams_in=(\d+) dgrams_out=(\d+)", err)
        if not m or int(m.group(1)) != sent or int(m.group(2)) != sent:
            print("server counters:", err, file=sys.stderr)
            return 1
        print("ok: %d datagrams echoed by udp_echo_server, sizes %s" % (sent, sizes))
        return 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def server():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    s.bind(("127.0.0.1", 0))
    print("port", s.getsockname()[1], flush=True)
    s.settimeout(20)
    n = 0
    while True:
        data, frm = s.recvfrom(70000)
        if data == b"quit":
            break
        s.sendto(data, frm)
        n += 1
    print("echoed", n, flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "client":
        sys.exit(client(sys.argv[2]))
    if len(sys.argv) >= 2 and sys.argv[1] == "server":
        sys.exit(server())
    print(__doc__, file=sys.stderr)
    sys.exit(2)
