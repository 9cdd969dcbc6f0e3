#!/usr/bin/python3
"""Real HTTP clients against examples/http_server (issue 16).

  http_clients.py PATH/TO/http_server

Starts the example on a kernel-chosen loopback port (backend from
NF_BACKEND), then:
  curl: keep-alive over several URLs on one connection (curl reports that it
        re-used the connection), a chunked upload, HEAD;
  Python http.client: a streamed (chunked) request body, 100-continue (the
        interim answer arrives before the body is sent), several requests on
        one connection, a request with Connection: close;
and finally SIGTERM, after which the server must exit 0.
"""
import http.client
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def tls_and_threads(exe, backend):
    """--threads 2 with --tls-cert/--tls-key: curl over https, keep-alive."""
    d = tempfile.mkdtemp()
    cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    srv = subprocess.Popen([exe, "--port", "0", "--backend", backend, "--threads", "2", "--tls-cert", cert,
                            "--tls-key", key], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = srv.stdout.readline().strip()
    try:
        if not line.startswith("listening on "):
            fail("tls: no 'listening on' line: %r" % line)
        url = "https://%s/" % line[len("listening on "):]
        r = subprocess.run(["curl", "-skv", "--http1.1", url, url], capture_output=True, text=True, timeout=20)
        if r.stdout != "Hello, World!" * 2 or "Re-using existing connection" not in r.stderr:
            fail("https keep-alive: %r\n%s" % (r.stdout, r.stderr))
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            rc = srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.kill()
            fail("tls server did not exit on SIGTERM")
        shutil.rmtree(d)
    if rc != 0:
        fail("tls server exit status %d" % rc)


def main():
    exe = sys.argv[1]
    if not shutil.which("curl"):
        fail("curl is not installed (make deps)")
    backend = os.environ.get("NF_BACKEND", "auto")
    srv = subprocess.Popen([exe, "--port", "0", "--backend", backend], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    line = srv.stdout.readline().strip()
    if not line.startswith("listening on "):
        srv.kill()
        fail("no 'listening on' line: %r %s" % (line, srv.stderr.read()))
    hostport = line[len("listening on "):]
    host, port = hostport.rsplit(":", 1)
    port = int(port)
    base = "http://%s:%d" % (host, port)
    try:
        # curl: three URLs on one keep-alive connection
        r = subprocess.run(["curl", "-sv", "--http1.1", base + "/", base + "/", base + "/"],
                           capture_output=True, text=True, timeout=20)
        if r.stdout != "Hello, World!" * 3:
            fail("curl keep-alive body: %r" % r.stdout)
        if r.stderr.count("Re-using existing connection") != 2:
            fail("curl did not re-use the connection:\n" + r.stderr)
        # curl: a chunked upload of 300 KiB
        with tempfile.NamedTemporaryFile() as f:
            blob = os.urandom(300 * 1024)
            f.write(blob)
            f.flush()
            r = subprocess.run(["curl", "-s", "--http1.1", "-H", "Transfer-Encoding: chunked",
                                "-H", "Content-Type: application/octet-stream",
                                "--data-binary", "@" + f.name, base + "/echo"],
                               capture_output=True, timeout=20)
            if r.stdout != blob:
                fail("curl chunked upload: %d bytes back, want %d" % (len(r.stdout), len(blob)))
        # curl: the metrics route
        r = subprocess.run(["curl", "-s", base + "/metrics"], capture_output=True, text=True, timeout=20)
        if "# TYPE netframe_http_requests_total counter" not in r.stdout:
            fail("metrics: %r" % r.stdout[:200])
        # curl: HEAD has the headers and no body
        r = subprocess.run(["curl", "-sI", "--http1.1", base + "/"], capture_output=True, text=True, timeout=20)
        if "Content-Length: 13" not in r.stdout or "200 OK" not in r.stdout:
            fail("curl HEAD: %r" % r.stdout)

        # http.client: a streamed body in chunks, then more requests on the
        # same connection
        c = http.client.HTTPConnection(host, port, timeout=10)
        parts = [b"x" * 1000, b"y" * 70000, b"z"]
        c.request("POST", "/echo", body=iter(parts), encode_chunked=True)
        resp = c.getresponse()
        data = resp.read()
        if resp.status != 200 or data != b"".join(parts):
            fail("http.client streamed body: %d, %d bytes" % (resp.status, len(data)))
        for _ in range(3):
            c.request("GET", "/")
            resp = c.getresponse()
            if resp.read() != b"Hello, World!" or resp.will_close:
                fail("http.client keep-alive")
        # 100-continue: the interim answer comes before the body is sent
        body = b"b" * 5000
        c.putrequest("POST", "/echo")
        c.putheader("Content-Length", str(len(body)))
        c.putheader("Expect", "100-continue")
        c.endheaders()
        ready, _, _ = select.select([c.sock], [], [], 5)
        if not ready:
            fail("no 100 Continue before the body")
        peek = c.sock.recv(25, 2)  # MSG_PEEK
        if not peek.startswith(b"HTTP/1.1 100 Continue"):
            fail("interim answer: %r" % peek)
        c.send(body)
        resp = c.getresponse()  # skips the 100
        if resp.status != 200 or resp.read() != body:
            fail("100-continue answer")
        # Connection: close
        c.request("GET", "/", headers={"Connection": "close"})
        resp = c.getresponse()
        if resp.read() != b"Hello, World!" or not resp.will_close:
            fail("Connection: close not honoured")
        c.close()
        # 404
        c = http.client.HTTPConnection(host, port, timeout=10)
        c.request("GET", "/nothing")
        resp = c.getresponse()
        resp.read()
        if resp.status != 404:
            fail("404: %d" % resp.status)
        c.close()
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            rc = srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.kill()
            fail("server did not exit on SIGTERM")
    if rc != 0:
        fail("server exit status %d: %s" % (rc, srv.stderr.read()))
    tls_and_threads(exe, backend)
    print("ok: curl keep-alive/chunked/HEAD, http.client streamed/100-continue/keep-alive/close, "
          "https on 2 threads, SIGTERM exit 0")


if __name__ == "__main__":
    main()
