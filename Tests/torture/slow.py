"""Hostile and slow clients (make torture): slowloris, slow body and slow read with slowhttptest (Debian), a
descriptor limit exhausted by idle connections, and clients that reset mid-response.

During each attack a probe sends a signed webhook and GET /healthz every 0.25 s on fresh connections; the check is
that every probe is answered (200) within 2 s, that the server does not spin (its CPU time during the attack stays
well below one core), and that it is still serving afterwards. Every process started here runs on 127.0.0.1 and is
stopped by its PID. SLOW_SECONDS sets the length of each slowhttptest run (default 20).
"""
import os
import re
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Tests", "pysupport"))
from server import free_port, read_response, start, stop, text_message_body, webhook_request  # noqa: E402

BINARY = os.path.join(ROOT, ".build", "release", "wasla")
SECRET = b"slow-client-secret-012345"
SECONDS = int(os.environ.get("SLOW_SECONDS", "20"))
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Probe(threading.Thread):
    """Webhooks and health checks on fresh connections, each with a 2 s deadline."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.halt = threading.Event()
        self.ok = 0
        self.failures = []
        self.worst = 0.0
        self.n = 0

    def once(self):
        self.n += 1
        body = text_message_body("wamid.SLOW.%d.%f" % (self.n, time.time()), "probe")
        requests = [
            webhook_request(SECRET, body, close=True),
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ]
        for raw in requests:
            started = time.time()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.settimeout(2)
                    s.sendall(raw)
                    status, _ = read_response(s, b"")
                elapsed = time.time() - started
                self.worst = max(self.worst, elapsed)
                if status == 200 and elapsed <= 2:
                    self.ok += 1
                else:
                    self.failures.append("status %d after %.2f s" % (status, elapsed))
            except (OSError, ConnectionError, ValueError, IndexError) as e:
                self.failures.append("%s after %.2f s" % (type(e).__name__, time.time() - started))

    def run(self):
        while not self.halt.is_set():
            self.once()
            time.sleep(0.25)


def under_attack(name, pid, port, attack):
    """Runs `attack()` with the probe alongside; returns True when the server held."""
    probe = Probe(port)
    cpu_before = cpu_seconds(pid)
    started = time.time()
    probe.start()
    detail = attack()
    probe.halt.set()
    probe.join()
    wall = time.time() - started
    cpu = (cpu_seconds(pid) - cpu_before) / wall
    held = not probe.failures and probe.ok > 0 and cpu < 0.5
    print("%-28s probes answered %d, failed %d (worst %.2f s); server CPU %.0f%% of a core; %s%s"
          % (name, probe.ok, len(probe.failures), probe.worst, 100 * cpu, detail,
             "" if held else "  FAILED " + "; ".join(probe.failures[:3])))
    return held


def slowhttptest(port, mode, extra):
    out = subprocess.run(["slowhttptest", mode, "-c", "2000", "-r", "400", "-i", "5", "-l", str(SECONDS), "-p", "3",
                          "-u", "http://127.0.0.1:%d/api/webhook" % port] + extra,
                         capture_output=True, text=True, timeout=SECONDS + 60)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    # slowhttptest prints its last status block; the connected count and verdict are what matter here.
    available = [line.split(":")[-1].strip() for line in text.splitlines() if "service available:" in line]
    connected = [line.split(":")[-1].strip() for line in text.splitlines() if line.strip().startswith("connected:")]
    unavailable = "NO" in available
    return "slowhttptest: %d status reports, service unavailable in %d; open connections at the end %s" % (
        len(available), available.count("NO"), connected[-1] if connected else "?"), not unavailable


def resets(port):
    """Clients that ask for a large answer, read a little, and reset the connection (SO_LINGER 0)."""
    for _ in range(300):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(100)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        except OSError:
            pass
    return "300 responses reset after their first 100 bytes"


def per_ip_cap(env):
    """One address opens 3,000 connections and leaves each with half a request head, as a slowloris run straight at
    the server would (no proxy in front). HTTP_MAX_CONNECTIONS_PER_IP=50 must cap what it holds, and a client from
    another address must be answered throughout. Loopback has every 127/8 address, so the attacker binds 127.0.0.2."""
    port = free_port()
    proc = start(BINARY, dict(env, HTTP_MAX_CONNECTIONS_PER_IP="50"), port,
                 preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)))
    try:
        baseline = open_fds(proc.pid)
        cpu_before, started = cpu_seconds(proc.pid), time.time()
        socks = []
        for _ in range(3000):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.settimeout(1)
                s.bind(("127.0.0.2", 0))
                s.connect(("127.0.0.1", port))
                s.sendall(b"POST /api/webhook HTTP/1.1\r\nHost: x\r\n")
                socks.append(s)
            except OSError:
                s.close()
        time.sleep(1)
        held_by_attacker = open_fds(proc.pid) - baseline
        probe = Probe(port)
        for _ in range(3):
            probe.once()
        cpu = (cpu_seconds(proc.pid) - cpu_before) / (time.time() - started)
        for sock in socks:
            sock.close()
        ok = (held_by_attacker <= 50 + 4 and probe.ok == 6 and not probe.failures and cpu < 0.5
              and proc.poll() is None)
        print("one address, cap 50         %d connections attempted from 127.0.0.2, server descriptors held for them %d; "
              "probes from 127.0.0.1 answered %d/6 (worst %.2f s); server CPU %.0f%% of a core%s"
              % (len(socks), held_by_attacker, probe.ok, probe.worst, 100 * cpu,
                 "" if ok else "  FAILED " + "; ".join(probe.failures[:3])))
        return ok
    finally:
        stop(proc)


def main():
    if not os.access(BINARY, os.X_OK):
        raise SystemExit("build first: make build")
    if shutil.which("slowhttptest") is None:
        raise SystemExit("slowhttptest is not installed (apt-get install -y slowhttptest)")
    data = tempfile.mkdtemp(prefix="wasla-slow-")
    env = dict(os.environ, DATA_DIR=data, HOST="127.0.0.1", LOG_LEVEL="error", WHATSAPP_APP_SECRET=SECRET.decode(),
               WEBHOOK_RATE_LIMIT_MAX="10000000", QUEUE_WORKER="off")
    ok = True
    # 1. Slow clients against the default configuration, with the descriptor limit raised as far as allowed.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    high = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    port = free_port()
    proc = start(BINARY, env, port, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (high, hard)))
    try:
        baseline = open_fds(proc.pid)
        for name, mode, extra in [
            ("slowloris (slow headers)", "-H", []),
            ("slow body (R-U-Dead-Yet)", "-B", ["-s", "65536"]),
            ("slow read", "-X", ["-k", "3", "-w", "1", "-y", "2", "-n", "5", "-t", "GET",
                                 "-u", "http://127.0.0.1:%d/openapi.json" % port]),
        ]:
            verdicts = []

            def attack(mode=mode, extra=extra, verdicts=verdicts):
                detail, available = slowhttptest(port, mode, extra)
                verdicts.append(available)
                return detail
            ok &= under_attack(name, proc.pid, port, attack) and all(verdicts)
        ok &= under_attack("resets mid-response", proc.pid, port, lambda: resets(port))
        time.sleep(16)  # past the keep-alive and write timeouts: every attack's connection is gone
        after = open_fds(proc.pid)
        back = after <= baseline + 4
        print("descriptors: %d before the attacks, %d after them%s" % (baseline, after, "" if back else "  FAILED"))
        ok &= back and proc.poll() is None
    finally:
        stop(proc)
    # 2. Descriptor exhaustion: a limit of 1,024 and 3,000 idle connections. Past the limit (minus the reserve kept
    #    for SQLite and files) new connections are accepted and closed at once: refused quickly, never left hanging,
    #    no busy loop; once the idle connections go, the server serves again.
    port = free_port()
    proc = start(BINARY, env, port, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)))
    try:
        cpu_before, started = cpu_seconds(proc.pid), time.time()
        socks = []
        for _ in range(3000):
            try:
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=1))
            except OSError:
                break
        time.sleep(2)
        probe = Probe(port)
        probe.once()
        fds = open_fds(proc.pid)
        refused_fast = probe.ok == 0 and probe.worst < 1 and all("after 0." in f or "after 1." in f for f in probe.failures)
        time.sleep(3)
        cpu = (cpu_seconds(proc.pid) - cpu_before) / (time.time() - started)
        for sock in socks:
            sock.close()
        time.sleep(1)
        after = Probe(port)
        after.once()
        held = cpu < 0.5 and after.ok == 2 and not after.failures and proc.poll() is None
        print("descriptor exhaustion      %d idle connections opened, server descriptors %d (limit 1024); a new client %s; "
              "server CPU %.0f%% of a core; after they closed: %d/2 answered%s"
              % (len(socks), fds, "refused at once" if refused_fast else "answered (the limit was not reached)",
                 100 * cpu, after.ok, "" if held else "  FAILED " + "; ".join(after.failures[:3])))
        ok &= held
    finally:
        stop(proc)
    # 3. The per-address cap against one address that tries to take every connection.
    try:
        ok &= per_ip_cap(env)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    print("slow clients: %s" % ("the server kept answering within 2 s, did not spin, and returned to its baseline"
                                if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
