#!/usr/bin/python3
"""TLS interop: netframe's TLS filter against peers nobody here wrote.

    tls_interop.py MODE MKCERTS ECHO_SERVER TLS_CLIENT

MODE:
  s_client    openssl s_client (TLS 1.3 and 1.2, verifying) -> echo_server --tls-cert
  s_server    tls_client (2 connections, the second resumed) -> openssl s_server -rev
  py_client   Python's ssl (verifying, ALPN, close_notify)   -> echo_server --tls-cert
  py_server   tls_client (ALPN, client certificate)          -> Python ssl echo server
  bad_peer    tls_client refuses a self-signed Python server; echo_server survives
              a Python client that sends garbage, then serves the next one

Certificates come from MKCERTS (made at test time, removed at the end).
The backend comes from NF_BACKEND. Exit 0 on success."""
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

import nfpeer

MODE, MKCERTS, ECHO_SERVER, TLS_CLIENT = sys.argv[1:5]
DIR = subprocess.check_output([MKCERTS], text=True).strip()


def cert(name):
    return os.path.join(DIR, name)


fail = nfpeer.fail


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_echo_server(extra=()):
    return nfpeer.start([ECHO_SERVER, "--port", "0", "--tls-cert", cert("server.pem"),
                         "--tls-key", cert("server.key")] + list(extra))


# echo_server stops on SIGTERM, frees everything and exits 0; any other
# status (a leak or UB reported by the sanitizers at shutdown, death by the
# signal itself) fails the test (its stderr goes to the test's output).
stop = nfpeer.stop


def run_client(args, timeout=20):
    r = subprocess.run([TLS_CLIENT] + args, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def mode_s_client():
    srv, port = start_echo_server()
    try:
        for ver in ("-tls1_3", "-tls1_2"):
            p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, ver,
                                  "-CAfile", cert("ca.pem"), "-servername", "localhost",
                                  "-verify_hostname", "localhost", "-verify_return_error",
                                  "-quiet"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            msg = b"ping from openssl s_client %s\n" % ver.encode()
            p.stdin.write(msg)
            p.stdin.flush()
            got = b""
            deadline = time.time() + 10
            os.set_blocking(p.stdout.fileno(), False)
            while len(got) < len(msg) and time.time() < deadline:
                try:
                    chunk = p.stdout.read()
                except BlockingIOError:
                    chunk = None
                if chunk:
                    got += chunk
                else:
                    time.sleep(0.02)
            p.kill()
            p.wait()
            err = p.stderr.read().decode(errors="replace")
            if got != msg:
                fail("s_client %s: echo %r, expected %r; stderr: %s" % (ver, got, msg, err))
            if "verify return:1" not in err:
                fail("s_client %s did not verify: %s" % (ver, err))
            print("s_client %s: echo ok, verified" % ver)
    finally:
        stop(srv)


def mode_s_server():
    # two connections: the second resumes the first's session (ticket)
    port = free_port()
    srv = subprocess.Popen(["openssl", "s_server", "-accept", str(port), "-cert", cert("server.pem"),
                            "-key", cert("server.key"), "-rev", "-naccept", "2", "-quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(0.3)
        for attempt in range(50):
            rc, out, err = run_client(["--ca", cert("ca.pem"), "--name", "localhost", "--connections",
                                       "2", "--expect", "emarften olleh", "127.0.0.1", str(port),
                                       "hello netframe"])
            if rc == 0 or "refused" not in err:
                break
            time.sleep(0.1)
        if rc != 0:
            fail("tls_client x2 vs s_server: rc %d %s %s" % (rc, out, err))
        lines = out.strip().splitlines()
        if len(lines) != 2 or "resumed=0" not in lines[0] or "resumed=1" not in lines[1]:
            fail("expected a full then a resumed handshake: %r" % lines)
        print("\n".join(lines))
    finally:
        srv.kill()
        srv.wait()


def mode_py_client():
    srv, port = start_echo_server(["--tls-alpn", "http/1.1"])
    try:
        for ver in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx = ssl.create_default_context(cafile=cert("ca.pem"))
            ctx.minimum_version = ver
            ctx.maximum_version = ver
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    data = os.urandom(200000)
                    s.sendall(data)
                    got = b""
                    while len(got) < len(data):
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        got += chunk
                    if got != data:
                        fail("python client %s: echo differs (%d of %d bytes)" % (ver, len(got), len(data)))
                    if s.selected_alpn_protocol() != "http/1.1":
                        fail("ALPN: %r" % s.selected_alpn_protocol())
                    print("python client %s: %s %s alpn=%s echo ok" % (ver.name, s.version(), s.cipher()[0],
                                                                      s.selected_alpn_protocol()))
                    s.unwrap()  # close_notify both ways: the server answers ours
    finally:
        stop(srv)


def py_echo_server(ctx, conns, errors):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    ls.settimeout(15)

    def serve():
        for _ in range(conns):
            try:
                c, _ = ls.accept()
                c.settimeout(10)
                try:
                    s = ctx.wrap_socket(c, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    errors.append(str(e))
                    c.close()
                    continue
                errors.append("peer=%s alpn=%s" % (s.getpeercert() and dict(x[0] for x in s.getpeercert()["subject"]).get("commonName"),
                                                  s.selected_alpn_protocol()))
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    s.sendall(d)
                try:
                    s.unwrap()
                except (ssl.SSLError, OSError):
                    pass
                s.close()
            except Exception as e:  # noqa: BLE001 - report, never hang
                errors.append("server: %r" % e)
        ls.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return ls.getsockname()[1], t


def mode_py_server():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert("server.pem"), cert("server.key"))
    ctx.load_verify_locations(cert("ca.pem"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["x-netframe", "http/1.1"])
    notes = []
    port, t = py_echo_server(ctx, 1, notes)
    rc, out, err = run_client(["--ca", cert("ca.pem"), "--name", "localhost", "--alpn", "x-netframe",
                               "--cert", cert("client.pem"), "--key", cert("client.key"),
                               "--expect", "hello python", "127.0.0.1", str(port), "hello python"])
    t.join(15)
    if rc != 0:
        fail("tls_client vs python server: rc %d %s %s %s" % (rc, out, err, notes))
    if "alpn=x-netframe" not in out or not notes or "peer=netframe test client" not in notes[0]:
        fail("negotiation: %s %s" % (out, notes))
    print(out.strip(), notes[0])


def mode_bad_peer():
    # our client refuses a self-signed server, with the reason
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert("self.pem"), cert("self.key"))
    notes = []
    port, t = py_echo_server(ctx, 1, notes)
    rc, out, err = run_client(["--ca", cert("ca.pem"), "--name", "localhost", "127.0.0.1", str(port), "x"])
    t.join(15)
    if rc == 0 or "self-signed certificate" not in err:
        fail("expected a verification failure: rc %d %s %s" % (rc, out, err))
    print("self-signed python server refused:", err.strip())
    # garbage to our server, then a good client
    srv, port = start_echo_server()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"\x16\x03\x01\x00\x04garbage-garbage-garbage\r\n\r\n")
            try:
                rest = s.recv(100)
            except ConnectionResetError:
                rest = b""
            print("garbage peer got %d bytes (an alert or nothing), then EOF" % len(rest))
        ctx = ssl.create_default_context(cafile=cert("ca.pem"))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"still alive")
                if s.recv(100) != b"still alive":
                    fail("the next connection was affected")
        if srv.poll() is not None:
            fail("echo_server died")
        print("next connection ok")
    finally:
        stop(srv)


try:
    {"s_client": mode_s_client, "s_server": mode_s_server, "py_client": mode_py_client,
     "py_server": mode_py_server, "bad_peer": mode_bad_peer}[MODE]()
finally:
    shutil.rmtree(DIR, ignore_errors=True)
print("ok")
