#!/usr/bin/env python3
"""Memory and start-up figures (part of make bench): resident memory of the release binary idle, with 10,000
idle keep-alive connections, and under webhook ingest load (peak, sampled every 50 ms), plus the time from
launch to the first answered /healthz. Loopback only; every process it starts is stopped by its PID.
Targets (issue 10): idle <= 24 MiB, ingest <= 64 MiB, 10,000 idle connections <= 150 MiB."""
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")
sys.path.insert(0, os.path.join(ROOT, "Tests", "pysupport"))
from server import free_port, rss_mib, stop  # noqa: E402
SECRET = "memory-bench-secret"


def uncache(path):
    """Drops the file's pages from the page cache, so the binary is read from disk as after a reboot. A binary
    just written (linked, copied) has all its pages cached in the shape the writes left them, and the kernel then
    maps more of them around each page the process touches (fault-around): about 2.5 MiB more resident for the
    same process."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def start(data, port, binary=None):
    binary = binary or os.path.join(BIN, "wasla")
    env = dict(os.environ, DATA_DIR=data, HOST="127.0.0.1", PORT=str(port), LOG_LEVEL="error",
               WHATSAPP_APP_SECRET=SECRET, WEBHOOK_RATE_LIMIT_MAX="10000000", HTTP_MAX_CONNECTIONS="16000")
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc, (time.monotonic() - t0) * 1000
        except OSError:
            if proc.poll() is not None or time.monotonic() - t0 > 15:
                raise SystemExit("the server did not start")
            time.sleep(0.002)


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    data = tempfile.mkdtemp(prefix="wasla-mem-")
    procs = []
    try:
        # The same binary just written (a fresh copy), for reference: see uncache().
        written = os.path.join(data, "wasla-copy")
        shutil.copy(os.path.join(BIN, "wasla"), written)
        os.makedirs(os.path.join(data, "written"))
        proc, _ = start(os.path.join(data, "written"), free_port(), written)
        time.sleep(1.0)
        just_written = rss_mib(proc.pid)
        stop(proc)

        uncache(os.path.join(BIN, "wasla"))
        port = free_port()
        proc, startup = start(data, port)
        procs.append(proc)
        time.sleep(1.0)
        idle = rss_mib(proc.pid)
        print("start-up to the first /healthz on a fresh data directory, the binary read from disk: %.0f ms" % startup)
        print("RSS idle: %.1f MiB, the binary read from disk (target <= 24 MiB); %.1f MiB started right after it "
              "was written" % (idle, just_written))

        conns = []
        want = 10000
        for _ in range(want):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                conns.append(s)
            except OSError:
                break
        # Each connection sends one request and reads the answer, so the server holds a live keep-alive session.
        for s in conns:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in conns:
            s.recv(256)
        time.sleep(1.0)
        first = rss_mib(proc.pid)
        # Held idle past the server's heap trim (HEAP_TRIM_SEC, 5 s): what answering them all at once left free in
        # the heap has gone back by then, and only what the idle connections hold remains.
        time.sleep(5.5)
        with_conns = rss_mib(proc.pid)
        print("RSS with %d idle keep-alive connections: %.1f MiB after 6.5 s (target <= 150 MiB); %.1f MiB after 1 s"
              % (len(conns), with_conns, first))
        for s in conns:
            s.close()
        stop(proc)
        # Ingest on a fresh process (allocator arenas from the 10,000 connections would count otherwise).
        shutil.rmtree(data, ignore_errors=True)
        os.makedirs(data)
        uncache(os.path.join(BIN, "wasla"))
        port = free_port()
        proc, _ = start(data, port)
        procs.append(proc)
        time.sleep(0.5)

        peak = [0.0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_mib(proc.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        load = subprocess.run([os.path.join(BIN, "LoadGen"), "--port", str(port), "--path", "/api/webhook", "--connections", "64",
                               "--duration", os.environ.get("BENCH_DURATION", "8"), "--webhook-secret", SECRET,
                               "--label", "ingest under memory sampling"], capture_output=True, text=True)
        done.set()
        sampler.join()
        print(load.stdout.strip())
        print("RSS peak under webhook ingest load: %.1f MiB (target <= 64 MiB)" % peak[0])
        return 0
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
