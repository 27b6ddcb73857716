"""Storage faults (make torture): the data directory on a small tmpfs that fills up, then on a read-only remount.

For each fault the script drives unique signed webhooks over one keep-alive connection and checks:
- while the fault lasts, Meta gets 503 (never a 200 for a body that is not stored) and the server keeps serving;
- when space returns (the tmpfs is remounted larger) or the mount is writable again, webhooks get 200 again;
- after a clean stop, every body answered 200 is in webhook_events (by its SHA-256), and nothing else is.

Needs root (mount -t tmpfs); without it the script says so and exits 0, with the reason. The server runs on
127.0.0.1 only and is stopped by its PID; the mount is removed at the end.
"""
import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Tests", "pysupport"))
from server import free_port, read_response, start, stop, text_message_body, webhook_request  # noqa: E402

BINARY = os.path.join(ROOT, ".build", "release", "wasla")
SECRET = b"storage-fault-secret-0123"
PAD = "x" * 3000  # ~3 KiB bodies: the small filesystem fills in a few thousand requests


def payload(wamid):
    return text_message_body(wamid, PAD)


class Driver:
    def __init__(self, port):
        self.port = port
        self.sock = None
        self.buf = b""
        self.n = 0
        self.acked = set()  # sha256 hex of bodies answered 200
        self.statuses = {}

    def send(self, tag):
        """One webhook; returns its status (0 when the connection failed)."""
        self.n += 1
        body = payload("wamid.%s.%d" % (tag, self.n))
        for _ in range(2):
            try:
                if self.sock is None:
                    self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                    self.buf = b""
                self.sock.sendall(webhook_request(SECRET, body))
                status, self.buf = read_response(self.sock, self.buf)
                break
            except (OSError, ConnectionError, ValueError, IndexError):
                if self.sock is not None:
                    self.sock.close()
                self.sock = None
                status = 0
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            self.acked.add(hashlib.sha256(body).hexdigest())
        return status

    def healthy(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False


def mount(point, options):
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", point], capture_output=True, text=True)


def remount(point, options):
    r = subprocess.run(["mount", "-o", "remount," + options, point], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("remount %s failed: %s" % (options, r.stderr.strip()))


def check_stored(data, acked, label):
    db = sqlite3.connect(os.path.join(data, "wasla.sqlite"))
    stored = {row[0] for row in db.execute("SELECT event_hash FROM webhook_events")}
    db.close()
    lost = acked - stored
    extra = stored - acked
    print("%s: acknowledged %d, stored %d, acknowledged but lost %d, stored but never acknowledged %d"
          % (label, len(acked), len(stored), len(lost), len(extra)))
    return not lost


def scenario(name, point, fault, heal):
    data = os.path.join(point, "data")
    os.makedirs(data, exist_ok=True)
    port = free_port()
    env = dict(os.environ, DATA_DIR=data, HOST="127.0.0.1", LOG_LEVEL="error", WHATSAPP_APP_SECRET=SECRET.decode(),
               WEBHOOK_RATE_LIMIT_MAX="10000000", QUEUE_WORKER="off")
    log = open(os.path.join(tempfile.gettempdir(), "wasla-storage-%s.log" % name), "w")
    proc = start(BINARY, env, port, stderr=log)
    ok = True
    try:
        d = Driver(port)
        for _ in range(50):
            if d.send(name + "-before") != 200:
                print("%s: FAILED, the server refused webhooks before the fault: %s" % (name, d.statuses))
                return False
        refused = fault(d)
        if refused == 0:
            print("%s: FAILED, no 503 while the storage was failing: %s" % (name, d.statuses))
            ok = False
        if not d.healthy():
            print("%s: FAILED, /healthz did not answer during the fault" % name)
            ok = False
        heal()
        recovered = 0
        deadline = time.time() + 20
        while time.time() < deadline and recovered < 50:
            if d.send(name + "-after") == 200:
                recovered += 1
            else:
                time.sleep(0.05)
        if recovered < 50:
            print("%s: FAILED, webhooks were not accepted again after the fault healed: %s" % (name, d.statuses))
            ok = False
        print("%s: answers %s; 503 during the fault: %d; 200 after it healed: %d" % (name, d.statuses, refused, recovered))
    finally:
        stop(proc)
        log.close()
    return check_stored(data, d.acked, name) and ok


def read_only_start(point):
    data = os.path.join(point, "data")
    os.makedirs(data, exist_ok=True)
    port = free_port()
    env = dict(os.environ, DATA_DIR=data, HOST="127.0.0.1", LOG_LEVEL="error", WHATSAPP_APP_SECRET=SECRET.decode(),
               PORT=str(port))
    proc = start(BINARY, env, port)  # creates the database, then stops cleanly
    stop(proc)
    remount(point, "ro")
    try:
        r = subprocess.run([BINARY, "serve"], env=env, capture_output=True, text=True, timeout=30)
    finally:
        remount(point, "rw")
    refused = r.returncode != 0
    print("read-only: the server %s (exit %d): %s" % ("refused to start" if refused else "STARTED", r.returncode,
                                                       (r.stderr.strip().splitlines() or ["(nothing)"])[-1][:200]))
    return refused


def main():
    if not os.access(BINARY, os.X_OK):
        raise SystemExit("build first: make build")
    point = tempfile.mkdtemp(prefix="wasla-fault-")
    r = mount(point, "size=6m")
    if r.returncode != 0:
        print("storage faults: skipped, cannot mount a tmpfs here (%s); needs root or CAP_SYS_ADMIN" % r.stderr.strip())
        os.rmdir(point)
        return 0
    ok = True
    try:
        def fill(d):
            refused = 0
            for _ in range(20000):
                status = d.send("full")
                if status == 503:
                    refused += 1
                    if refused >= 200:
                        break
                elif status != 200:
                    print("full: unexpected status %d, stopping the fill" % status)
                    break
            return refused

        ok &= scenario("full", point, fill, lambda: remount(point, "size=256m"))
        shutil.rmtree(os.path.join(point, "data"), ignore_errors=True)

        # Read-only: Linux refuses to remount a filesystem read-only while a process has a file open for writing
        # ("mount point is busy"), so a running server cannot be put on a read-only mount from outside. What can
        # happen is a restart onto a read-only mount (a remount by the kernel after errors, a wrong fstab): the
        # server must refuse to start, naming the problem, rather than accept webhooks it cannot store.
        ok &= read_only_start(point)
    finally:
        subprocess.run(["umount", point], capture_output=True)
        os.rmdir(point)
    print("storage faults: %s" % ("every acknowledged webhook stored; 503 during faults; recovery" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
