#!/usr/bin/env python3
"""Zero acknowledged loss under kill -9 (make torture).

Starts the release binary on a temporary data directory (127.0.0.1 only), drives unique signed webhooks over
keep-alive connections from several threads, records every wamid answered 200, kills the server with SIGKILL at
a random moment, and repeats for TORTURE_ROUNDS rounds (default 20). Then it restarts the server once more, waits
until every stored event is processed, stops it with SIGTERM, and checks in the database that every
acknowledged webhook is stored and became exactly one message. Prints acknowledged / stored / lost. Every
process it starts is stopped by its PID.
"""
import os
import random
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Tests", "pysupport"))
from server import free_port, read_response, start, stop, text_message_body, webhook_request  # noqa: E402
BINARY = os.path.join(ROOT, ".build", "release", "wasla")
SECRET = b"torture-secret-0123456789"
ROUNDS = int(os.environ.get("TORTURE_ROUNDS", "20"))
WORKERS = int(os.environ.get("TORTURE_WORKERS", "8"))


def body(wamid):
    return text_message_body(wamid, "kill -9 " + wamid, name="Torture")




def drive(port, round_no, worker, acked, lock, halt):
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return
    buf = b""
    n = 0
    try:
        while not halt.is_set():
            n += 1
            wamid = "wamid.T9.%d.%d.%d" % (round_no, worker, n)
            payload = body(wamid)
            sock.sendall(webhook_request(SECRET, payload))
            status, buf = read_response(sock, buf)
            if status == 200:
                with lock:
                    acked.add(wamid)
    except (OSError, ConnectionError, ValueError, IndexError):
        return  # the server died under us: this request was never acknowledged
    finally:
        sock.close()


def main():
    if not os.access(BINARY, os.X_OK):
        raise SystemExit("build first: make build")
    data = tempfile.mkdtemp(prefix="wasla-torture-")
    env = dict(os.environ, DATA_DIR=data, HOST="127.0.0.1", LOG_LEVEL="error", WHATSAPP_APP_SECRET=SECRET.decode(),
               WEBHOOK_RATE_LIMIT_MAX="10000000")
    acked, lock = set(), threading.Lock()
    procs = []
    try:
        for r in range(ROUNDS):
            port = free_port()
            proc = start(BINARY, env, port)
            procs.append(proc)
            halt = threading.Event()
            threads = [threading.Thread(target=drive, args=(port, r, w, acked, lock, halt)) for w in range(WORKERS)]
            for t in threads:
                t.start()
            time.sleep(random.uniform(0.3, 1.5))
            os.kill(proc.pid, signal.SIGKILL)  # at a random moment, mid-traffic
            proc.wait()
            halt.set()
            for t in threads:
                t.join(timeout=10)
            print("round %2d: killed with SIGKILL; %d acknowledged so far" % (r + 1, len(acked)), flush=True)
        # Restart once more and let the processor finish what was stored before the last kill.
        port = free_port()
        proc = start(BINARY, env, port)
        procs.append(proc)
        db = os.path.join(data, "wasla.sqlite")
        deadline = time.time() + 120
        pending = -1
        while time.time() < deadline:
            conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
            pending = conn.execute("SELECT count(*) FROM webhook_events WHERE processing_status = 'pending'").fetchone()[0]
            conn.close()
            if pending == 0:
                break
            time.sleep(0.2)
        stop(proc)
        conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
        stored = set()
        for (wamid,) in conn.execute("SELECT whatsapp_message_id FROM messages WHERE whatsapp_message_id LIKE 'wamid.T9.%'"):
            stored.add(wamid)
        events = conn.execute("SELECT count(*) FROM webhook_events").fetchone()[0]
        duplicates = conn.execute("""SELECT count(*) FROM (SELECT whatsapp_message_id FROM messages
                                     GROUP BY whatsapp_message_id HAVING count(*) > 1)""").fetchone()[0]
        conn.close()
        lost = acked - stored
        print("rounds: %d, acknowledged: %d, stored events: %d, messages from acknowledged webhooks: %d, lost: %d, "
              "pending after restart: %d, duplicated messages: %d"
              % (ROUNDS, len(acked), events, len(acked & stored), len(lost), pending, duplicates))
        if lost or pending != 0 or duplicates or not acked:
            print("TORTURE FAILED: %s" % sorted(lost)[:10])
            return 1
        print("check: every acknowledged webhook was stored and processed exactly once")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
