#!/usr/bin/python3
"""The UDP echo example echoes what it receives (issue 13 part 4).

  udp_echo_example.py UDP_ECHO_SERVER BACKEND MODE [THREADS] [--no-rss-check]

Starts examples/udp_echo_server with its default options on a port the
kernel picks (--port 0), on BACKEND (uring, epoll) in MODE (block, poll,
event), and checks:

  1. datagrams of 0, 1, 2048, 2049, 9000 and 65,507 bytes come back
     byte-identical, from the server's address;
  2. a flood from a peer that never reads (65,507- and 1,400-byte datagrams
     for 1.5 s, the peer's receive buffer tiny) grows the server's RSS by less
     than 16 MiB (the send queue is bounded), and the server still answers
     afterwards (--no-rss-check, for ASan builds: the growth is printed, not
     judged, since ASan's quarantine keeps freed memory);
  3. stopped by its PID with SIGTERM, it exits 0 and its counters add up
     (truncated=0);
  4. started again with --recv-size 2048, a 2,049-byte datagram is not
     echoed (no truncated copy comes back), is counted (truncated=1) and is
     logged on stderr, while 2,048 bytes still are echoed.

Uses only Python's socket module (Debian's /usr/bin/python3)."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

SIZES = [0, 1, 2048, 2049, 9000, 65507]
RSS_LIMIT_KIB = 16 * 1024
BACKEND_NAME = {"uring": "io_uring", "epoll": "epoll"}


RUNNING = []  # the server started and not yet stopped: killed on failure


def fail(*msg):
    print("FAIL:", *msg, file=sys.stderr)
    for p in RUNNING:
        p.kill()
        p.wait()
    sys.exit(1)


def payload(tag, n):
    return bytes((tag * 31 + j * 7) % 251 for j in range(n))


def start(server, backend, mode, threads, extra=()):
    cmd = [server, "--port", "0", "--backend", backend, "--mode", mode, "--threads", str(threads), *extra]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    RUNNING.append(p)
    line = p.stdout.readline()
    m = re.search(r"listening on ([0-9.]+):(\d+) udp backend=(\S+)", line)
    if not m:
        p.kill()
        fail("no listening line from", " ".join(cmd), ":", line, p.communicate()[1])
    if m.group(3) != BACKEND_NAME[backend]:
        fail("asked for", backend, "got", m.group(3))
    return p, (m.group(1), int(m.group(2)))


def stop(p):
    """SIGTERM by PID; exit status 0 required. Returns the counters and stderr."""
    os.kill(p.pid, signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        fail("server did not stop on SIGTERM")
    RUNNING.remove(p)
    if p.returncode != 0:
        fail("server exit status", p.returncode, err)
    m = re.search(r"dgrams_in=(\d+) dgrams_out=(\d+) bytes_in=(\d+) dropped=(\d+) send_errors=(\d+) truncated=(\d+)",
                  err)
    if not m:
        fail("no counters line:", err)
    keys = ["dgrams_in", "dgrams_out", "bytes_in", "dropped", "send_errors", "truncated"]
    return dict(zip(keys, map(int, m.groups()))), err


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def client():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    s.bind(("127.0.0.1", 0))
    return s


def roundtrip(s, addr, data, timeout=5.0):
    """Sends data and returns the reply, or None if nothing came in time."""
    s.sendto(data, addr)
    s.settimeout(timeout)
    try:
        got, frm = s.recvfrom(70000)
    except socket.timeout:
        return None
    if frm != addr:
        fail("reply from", frm, "expected", addr)
    return got


def echo_all(s, addr, tag):
    for k, n in enumerate(SIZES):
        data = payload(tag + k, n)
        got = roundtrip(s, addr, data)
        if got is None:
            fail("no echo of a %d-byte datagram" % n)
        if got != data:
            fail("echo of a %d-byte datagram: %d bytes back, %s" % (n, len(got), "same length, other bytes"
                                                                      if len(got) == n else "not the same"))
    return len(SIZES), sum(SIZES)


def flood(addr, pid, seconds=1.5):
    """A peer that never reads; returns (datagrams sent, peak RSS growth)."""
    f = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    f.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the echoes have nowhere to go
    f.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    f.bind(("127.0.0.1", 0))
    f.setblocking(False)
    big, small = payload(1, 65507), payload(2, 1400)
    base = rss_kib(pid)
    peak = base
    sent = 0
    end = time.monotonic() + seconds
    next_sample = 0.0
    while time.monotonic() < end:
        for i in range(64):
            try:
                f.sendto(big if i % 2 == 0 else small, addr)
                sent += 1
            except BlockingIOError:
                time.sleep(0.0005)
                break
        now = time.monotonic()
        if now >= next_sample:
            peak = max(peak, rss_kib(pid))
            next_sample = now + 0.02
    time.sleep(0.2)  # the server works off what is still in its receive buffer
    peak = max(peak, rss_kib(pid))
    f.close()
    return sent, base, peak - base


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    args = [a for a in sys.argv[1:] if a != "--no-rss-check"]
    rss_check = len(args) == len(sys.argv) - 1
    server, backend, mode = args[:3]
    threads = int(args[3]) if len(args) > 3 else 1

    # 1-3: the defaults echo every size whole; a flood stays bounded
    p, addr = start(server, backend, mode, threads)
    s = client()
    n1, b1 = echo_all(s, addr, 0)
    sent, base, grew = flood(addr, p.pid)
    print("flood: %d datagrams from a peer that never reads; server RSS %d KiB, grew %d KiB at most (limit %d)" %
          (sent, base, grew, RSS_LIMIT_KIB))
    if rss_check and grew >= RSS_LIMIT_KIB:
        fail("RSS grew by %d KiB under the flood" % grew)
    # still answering, every size whole (a late flood echo cannot reach s: other socket)
    n2, b2 = echo_all(s, addr, 100)
    c, err = stop(p)
    if c["truncated"] != 0:
        fail("truncated with the default options:", err)
    if c["dgrams_in"] < n1 + n2 or c["bytes_in"] < b1 + b2:
        fail("counters lower than what was echoed:", c)
    if c["dgrams_out"] + c["dropped"] + c["send_errors"] > c["dgrams_in"]:
        fail("more out than in:", c)
    print("ok: sizes %s echoed whole on %s/%s threads=%d; counters %s" % (SIZES, backend, mode, threads, c))

    # 4: a smaller --recv-size: the longer datagram is not echoed, it is counted and logged
    p, addr = start(server, backend, mode, threads, ("--recv-size", "2048"))
    s = client()
    if roundtrip(s, addr, payload(3, 2048)) != payload(3, 2048):
        fail("2048 bytes with --recv-size 2048 not echoed whole")
    if roundtrip(s, addr, payload(4, 2049), timeout=0.5) is not None:
        fail("a truncated datagram was echoed")
    if roundtrip(s, addr, b"x") != b"x":  # alive, and nothing from the 2049 came late
        fail("no echo after the truncated datagram")
    c, err = stop(p)
    if c["truncated"] != 1 or "truncated, not echoed" not in err:
        fail("truncation not counted or not logged:", err)
    print("ok: with --recv-size 2048 a 2049-byte datagram is refused, counted and logged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
