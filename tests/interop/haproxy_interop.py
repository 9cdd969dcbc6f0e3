#!/usr/bin/python3
"""Interop: Debian's HAProxy in front of netframe's echo_server --proxy.

Starts echo_server --proxy on an ephemeral loopback port, then HAProxy (a
child, foreground, generated config) with two TCP frontends: one whose
backend server line has `send-proxy` (v1), one with `send-proxy-v2`. A
client connects to each frontend from a distinct loopback source address
(127.0.0.2 / 127.0.0.3), sends data and checks the echo; echo_server's
per-connection line must name that client address and port as the peer,
the HAProxy side as the transport, and the PROXY version used. The v2 backend also runs HAProxy's health checks
with `check-send-proxy`, which arrive as v2 LOCAL connections: one must be
logged as such.

Usage: haproxy_interop.py ECHO_SERVER. Exit 0 ok, 1 failure (a missing
haproxy too: make deps installs it, so its absence is a broken set-up)
(haproxy not installed). NF_BACKEND picks the echo_server backend."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_ports(n):
    """n distinct loopback ports free a moment ago (held together while chosen)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


CONFIG = """global
    maxconn 64
defaults
    mode tcp
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe_v1
    bind 127.0.0.1:{p1}
    default_backend be_v1
frontend fe_v2
    bind 127.0.0.1:{p2}
    default_backend be_v2
backend be_v1
    server echo 127.0.0.1:{port} send-proxy
backend be_v2
    server echo 127.0.0.1:{port} send-proxy-v2 check inter 200 check-send-proxy
"""


def wait_ready(hp, ports):
    """True once every frontend accepts; False if haproxy exits or 10 s pass."""
    deadline = time.time() + 10
    for p in ports:
        while True:
            if hp.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", p), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    return False
                time.sleep(0.05)
    return True


def main():
    echo_server = sys.argv[1]
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(haproxy):
        print("FAIL: haproxy is not installed (make deps / apt-get install haproxy)")
        return 1
    version = subprocess.run([haproxy, "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    print(version)

    for attempt in range(5):  # port 0 can fail while the machine's ephemeral ports run out
        es = subprocess.Popen([echo_server, "--port", "0", "--proxy"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        first = es.stdout.readline()
        if first.startswith("listening on"):
            break
        print("echo_server did not start:", first, es.stderr.read())
        es.wait()
        time.sleep(0.5)
    else:
        return 1
    lines = []
    port = int(first.split()[2].rsplit(":", 1)[1])

    def reader():
        for ln in es.stdout:
            lines.append(ln.strip())

    threading.Thread(target=reader, daemon=True).start()

    tmp = tempfile.mkdtemp(prefix="nf_haproxy_")
    cfgfile = os.path.join(tmp, "haproxy.cfg")
    failed = []
    hp = None
    try:
        # Ports picked here may be taken by someone else before HAProxy binds
        # them (a busy shared machine): retry with new ones.
        for attempt in range(5):
            p1, p2 = free_ports(2)
            with open(cfgfile, "w") as f:
                f.write(CONFIG.format(p1=p1, p2=p2, port=port))
            hp = subprocess.Popen([haproxy, "-db", "-f", cfgfile], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
            if wait_ready(hp, (p1, p2)):
                break
            out = hp.stdout.read() if hp.poll() is not None else ""
            hp.kill()
            hp.wait()
            hp = None
            print(f"haproxy did not start (attempt {attempt + 1}): {out}")
        if hp is None:
            return 1

        for fport, ver, src in ((p1, 1, "127.0.0.2"), (p2, 2, "127.0.0.3")):
            c = socket.socket()
            c.settimeout(10)
            c.bind((src, 0))
            c.connect(("127.0.0.1", fport))
            cport = c.getsockname()[1]
            msg = (f"hello through haproxy v{ver} ".encode()) * 200
            c.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = c.recv(65536)
                if not chunk:
                    break
                got += chunk
            c.close()
            if got != msg:
                failed.append(f"v{ver}: echo mismatch ({len(got)} of {len(msg)} bytes)")
            want = f"proxy: peer={src}:{cport} transport=127.0.0.1:"
            deadline = time.time() + 5
            line = None
            while time.time() < deadline and line is None:
                line = next((ln for ln in list(lines) if ln.startswith(want)), None)
                time.sleep(0.02)
            if line is None:
                failed.append(f"v{ver}: no line starting with {want!r}; saw {lines}")
            elif f"version={ver} command=proxy" not in line:
                failed.append(f"v{ver}: wrong version/command in {line!r}")
            else:
                print(f"ok v{ver}: client {src}:{cport} -> haproxy :{fport} -> echo_server: {line}")
        # HAProxy's health checks (check-send-proxy on the v2 backend) open
        # connections of their own with the v2 LOCAL command
        deadline = time.time() + 5
        local = None
        while time.time() < deadline and local is None:
            local = next((ln for ln in list(lines) if ln.endswith("version=2 command=local")), None)
            time.sleep(0.05)
        if local is None:
            failed.append(f"no v2 LOCAL connection from haproxy's health checks; saw {lines}")
        else:
            print(f"ok v2 LOCAL (health check): {local}")
    finally:
        killed = set()
        for p in (hp, es):
            if p is None:
                continue
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                killed.add(p)
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    # echo_server handles SIGTERM (stops, closes, frees) and exits 0: death by
    # the signal itself (-15) or any other status is a failure, and so is a
    # shutdown that took more than 5 s.
    if es in killed:
        failed.append("echo_server did not exit within 5 s of SIGTERM (killed)")
    elif es.returncode != 0:
        failed.append(f"echo_server exit {es.returncode} after SIGTERM, expected 0")
    for f in failed:
        print("FAIL:", f)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
