#!/usr/bin/env python3
"""Webhook acknowledgements while the processor catches up (part of make bench). A burst of LoadGen builds a
backlog of stored, unprocessed events; then one signed webhook every 150 ms over one keep-alive connection, while
the processor drains the backlog in its big catch-up batches, which a webhook commit has to wait for. Prints the
acknowledgement latencies and how long the backlog took to drain (`wasla_webhook_processing_lag_seconds` back at
0). Loopback only; the server is stopped by its PID."""
import os
import re
import shutil
import sys
import tempfile
import time
import socket
import subprocess
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")
sys.path.insert(0, os.path.join(ROOT, "Tests", "pysupport"))
from server import free_port, read_response, start, stop, text_message_body, webhook_request  # noqa: E402
SECRET = b"catchup-bench-secret"
PROBES = 40
INTERVAL = 0.15  # longer than the writer's 100 ms quiet window: the processor is in catch-up mode between probes


def lag_is_zero(port):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    return re.search(r"^wasla_webhook_processing_lag_seconds 0$", text, re.M) is not None


def main():
    burst = os.environ.get("BENCH_CATCHUP_BURST", "4")
    data = tempfile.mkdtemp(prefix="wasla-catchup-")
    port = free_port()
    env = dict(os.environ, DATA_DIR=data, HOST="127.0.0.1", LOG_LEVEL="error", WHATSAPP_APP_SECRET=SECRET.decode(),
               WEBHOOK_RATE_LIMIT_MAX="10000000")
    proc = start(os.path.join(BIN, "wasla"), env, port)
    try:
        load = subprocess.run([os.path.join(BIN, "LoadGen"), "--port", str(port), "--path", "/api/webhook",
                               "--connections", "64", "--duration", burst, "--webhook-secret", SECRET.decode(),
                               "--label", "burst"], capture_output=True, text=True, check=True)
        print(load.stdout.strip())
        sock = socket.create_connection(("127.0.0.1", port))
        latencies, drained, buf = [], None, b""
        begin = time.monotonic()
        for i in range(PROBES):
            t0 = time.perf_counter()
            sock.sendall(webhook_request(SECRET, text_message_body("wamid.PROBE%d" % i, "probe", sender="15550100001")))
            status, buf = read_response(sock, buf)
            latencies.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise SystemExit("CHECK FAILED: probe %d answered %d" % (i, status))
            if drained is None and lag_is_zero(port):
                drained = time.monotonic() - begin
            time.sleep(INTERVAL)
        sock.close()
        latencies.sort()
        print("acknowledgements of %d webhooks, one every %d ms from the end of the burst: median %.1f ms, "
              "p90 %.1f ms, max %.1f ms" % (PROBES, INTERVAL * 1000, latencies[len(latencies) // 2],
                                            latencies[int(len(latencies) * 0.9)], latencies[-1]))
        print("backlog drained %s after the burst" % ("%.1f s" % drained if drained is not None
                                                      else "more than %.0f s" % (PROBES * INTERVAL)))
        return 0
    finally:
        stop(proc)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
