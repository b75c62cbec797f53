"""Helpers of the server tests: start `engram serve` on a free loopback port, HTTP with the
standard library's http.client, a Server-Sent Events reader, process RSS.

The server owns the database's stores while it runs (a store is open in one process at a time),
so tests set their tables up through the server (POST /tables) or with the CLI before it starts.
"""
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import time

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def finish(name):
    if failures:
        print(f"{name}: {len(failures)} failure(s)")
        sys.exit(1)
    print(f"{name}: ok")


class Server:
    """`engram serve` on 127.0.0.1, any free port."""

    def __init__(self, binary, db, *args):
        self.port_file = db + ".port"
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.log = open(db + ".log", "w")
        self.proc = subprocess.Popen([binary, "serve", "--db", db, "--listen", "127.0.0.1:0",
                                      "--port-file", self.port_file, *args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if os.path.exists(self.port_file) and open(self.port_file).read().strip():
                self.port = int(open(self.port_file).read())
                return
            if self.proc.poll() is not None:
                raise RuntimeError("engram serve exited: " + open(db + ".log").read())
            time.sleep(0.05)
        raise RuntimeError("engram serve did not start")

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=None):
        """(status, parsed JSON or text, headers)."""
        c = self.conn()
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        c.request(method, path, body=data, headers=headers or {})
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        try:
            return r.status, json.loads(text), r
        except ValueError:
            return r.status, text, r

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
            check(self.proc.returncode == 0, f"engram serve exits 0 on SIGTERM (got {self.proc.returncode})")
        except subprocess.TimeoutExpired:
            check(False, "engram serve did not stop within 20 s of SIGTERM")
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def sse_events(resp):
    """Yields (event, id or None, data) from a text/event-stream response."""
    event, eid, data = None, None, []
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.decode().rstrip("\n")
        if line == "":
            if event is not None or data:
                yield event or "message", eid, "\n".join(data)
            event, eid, data = None, None, []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            event = value
        elif key == "id":
            eid = value
        elif key == "data":
            data.append(value)


def vec(seed, dim):
    """A deterministic pseudo-random vector in [-1, 1)^dim (not normalised)."""
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(dim)]


def tmpdir():
    return tempfile.mkdtemp(prefix="engram-server-test-")
