"""Shared by the interop scripts: the backend asked for, and the life of a
netframe example server under test (started on port 0, stopped by SIGTERM
with exit status 0 required: a sanitizer report at shutdown, death by the
signal or a hang all fail)."""
import os
import signal
import subprocess
import sys

BACKEND = {"uring": "uring", "epoll": "epoll"}.get(os.environ.get("NF_BACKEND", ""), "auto")


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def start(cmd):
    """Starts cmd (stdout piped as text) and waits for its first line,
    "listening on HOST:PORT ..."; returns (proc, port)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        proc.wait()
        fail("server said %r" % line)
    print(line.strip(), flush=True)
    return proc, int(line.split()[2].rsplit(":", 1)[1])


def stop(proc, timeout=10):
    """SIGTERM, then exit status 0 within timeout seconds, or fail."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        fail("server did not exit within %d s of SIGTERM" % timeout)
    if rc != 0:
        fail("server exit status %d after SIGTERM, expected 0" % rc)
