"""Soak (make soak): SOAK_SECONDS (default 600) of mixed load on the release binary, with its resident memory,
SQLite's memory and open descriptors sampled every 5 s.

Load, all on 127.0.0.1: signed webhooks from 50 customers over two keep-alive connections (about 1,000/s), the
queue endpoint every second, a signed-in user reading the overview, inbox and events pages, and an API key listing
conversations and contacts. The default workflow gets a step that never matches (added through the API before the
load), so every inbound message is a workflow job for the worker: a workflow without steps gets none. A warm-up comes first (at least 60 s, and until 110,000 webhooks have filled the
Deduplicator's bounded set); SOAK_SECONDS are measured after it.

Checks: no 5xx (the queue endpoint's 429s past its rate limit are expected); resident memory less the memory SQLite
reports for its page caches (which grow with the data up to their configured size) grows by at most 10 % from the
first to the last quarter of the measured window (means of the samples); open descriptors return to their idle
count once the load stops; the job worker has run workflow jobs and kept up (none pending 20 s after the load stops: a worker falling
behind its workflow jobs once let a backlog and a sort of it grow for the whole run). The server is stopped by its PID.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Tests", "pysupport"))
from server import free_port, read_response, rss_mib, start, stop, text_message_body, webhook_request  # noqa: E402

BINARY = os.path.join(ROOT, ".build", "release", "wasla")
SECRET = b"soak-secret-0123456789"
SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))


def metric_sum(port, name, label=""):
    """The sum of a /metrics series' samples whose labels contain `label` (0 when absent or unreachable)."""
    total = 0.0
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if (line.startswith(name + " ") or line.startswith(name + "{")) and label in line:
                    total += float(line.split()[-1])
    except OSError:
        pass
    return total


def sqlite_mib(port):
    """wasla_sqlite_memory_bytes from /metrics: the page caches, which fill up to their limit as the data grows."""
    return metric_sum(port, "wasla_sqlite_memory_bytes") / (1024 * 1024)


def pending_jobs(port):
    """Jobs waiting to run (wasla_jobs, state pending): the worker keeping up with the webhooks' workflow jobs."""
    return int(metric_sum(port, "wasla_jobs", 'state="pending"'))


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.by = {}

    def add(self, kind, status):
        with self.lock:
            key = "%s %s" % (kind, status if status else "error")
            self.by[key] = self.by.get(key, 0) + 1


def webhooks(port, worker, halt, counts):
    sock, buf, n = None, b"", 0
    while not halt.is_set():
        n += 1
        customer = "155500%05d" % (n % 50)
        body = text_message_body("wamid.SOAK.%d.%d" % (worker, n), "soak", sender=customer, name="Soak %s" % customer,
                                 timestamp=int(time.time()))
        status = 0
        for _ in range(2):  # once more on a fresh connection: keep-alive connections end after 1,000 requests
            try:
                if sock is None:
                    sock, buf = socket.create_connection(("127.0.0.1", port), timeout=10), b""
                sock.sendall(webhook_request(SECRET, body))
                status, buf = read_response(sock, buf)
                break
            except (OSError, ConnectionError, ValueError, IndexError):
                if sock is not None:
                    sock.close()
                sock = None
        counts.add("webhook", status)
        time.sleep(0.001)
    if sock is not None:
        sock.close()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 303 is an answer here, not a hop


def call(opener, method, url, headers=None, data=None, cookies=None, timeout=10):
    """One request; returns the status. With `cookies` (a dict), Set-Cookie answers are kept and sent back: done by
    hand because the session cookies are Secure, which Python's cookie jar never returns over plain http."""
    headers = dict(headers or {})
    if cookies:
        headers["Cookie"] = "; ".join("%s=%s" % kv for kv in cookies.items())
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with opener.open(request, timeout=timeout) as r:
            body, status, answer = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        body, status, answer = e.read(), e.code, e.headers
    except OSError:
        return 0, b""
    if cookies is not None:
        for line in answer.get_all("Set-Cookie") or []:
            name, _, rest = line.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
    return status, body


def add_quiet_step(base, key):
    """An auto-reply no message matches, on the default workflow: each inbound message becomes a workflow job."""
    opener, auth = urllib.request.build_opener(), {"Authorization": "Bearer " + key}
    status, body = call(opener, "GET", base + "/api/v1/workflows", auth)
    workflows = json.loads(body)["data"] if status == 200 else []
    default = [w["id"] for w in workflows if w.get("is_default")]
    if not default:
        raise SystemExit("no default workflow: GET /api/v1/workflows answered %d" % status)
    step = json.dumps({"type": "auto_reply", "config": {"keywords": ["no message says this"], "text": "unused"}}).encode()
    status, body = call(opener, "POST", base + "/api/v1/workflows/%s/steps" % default[0],
                        dict(auth, **{"Content-Type": "application/json"}), step)
    if status != 201:
        raise SystemExit("adding the workflow step failed: %d %s" % (status, body[:200]))


def queue(base, halt, counts):
    """A cron caller: a run works through due jobs for up to QUEUE_RUN_BUDGET_SEC (20 s by default), and with
    webhooks arriving all the time there are always due jobs, so the client waits longer than the budget."""
    opener = urllib.request.build_opener(NoRedirect)
    while not halt.is_set():
        counts.add("queue", call(opener, "POST", base + "/api/queue/whatsapp", {"x-queue-secret": "soak-queue-secret"},
                                 b"", timeout=40)[0])
        time.sleep(1)


def dashboard(base, halt, counts):
    opener = urllib.request.build_opener(NoRedirect)
    cookies = {}
    _, page = call(opener, "GET", base + "/login", cookies=cookies)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.decode()).group(1)
    form = urllib.parse.urlencode({"csrf": csrf, "email": "admin@example.com", "password": "soak admin password"}).encode()
    counts.add("login", call(opener, "POST", base + "/login", {"Origin": base}, form, cookies)[0])
    while not halt.is_set():
        for path in ("/overview", "/inbox", "/events"):
            counts.add("page", call(opener, "GET", base + path, cookies=cookies)[0])
        time.sleep(0.5)


def api(base, key, halt, counts):
    opener = urllib.request.build_opener()
    while not halt.is_set():
        for path in ("/api/v1/conversations?limit=20", "/api/v1/contacts?limit=20"):
            counts.add("api", call(opener, "GET", base + path, {"Authorization": "Bearer " + key})[0])
        time.sleep(0.2)


def main():
    if not os.access(BINARY, os.X_OK):
        raise SystemExit("build first: make build")
    data = tempfile.mkdtemp(prefix="wasla-soak-")
    env = dict(os.environ, DATA_DIR=data, HOST="127.0.0.1", LOG_LEVEL="error", WHATSAPP_APP_SECRET=SECRET.decode(),
               QUEUE_SECRET="soak-queue-secret", SESSION_SECRET="s" * 40,
               BASIC_AUTH_USERS="admin@example.com:soak admin password:admin",
               WHATSAPP_GRAPH_URL="http://127.0.0.1:9", WEBHOOK_RATE_LIMIT_MAX="10000000", API_RATE_LIMIT_MAX="100000")
    created = subprocess.run([BINARY, "keys", "create", "--name", "soak", "--scopes", "read,admin"], env=env,
                             capture_output=True, text=True)
    if created.returncode != 0:
        raise SystemExit("keys create failed: " + created.stderr)
    key = created.stdout.split()[0]
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    proc = start(BINARY, env, port)
    ok = True
    try:
        time.sleep(1)
        add_quiet_step(base, key)
        idle_fds = len(os.listdir("/proc/%d/fd" % proc.pid))
        counts, halt = Counts(), threading.Event()
        threads = [threading.Thread(target=webhooks, args=(port, w, halt, counts)) for w in range(2)]
        threads += [threading.Thread(target=queue, args=(base, halt, counts)),
                    threading.Thread(target=dashboard, args=(base, halt, counts)),
                    threading.Thread(target=api, args=(base, key, halt, counts))]
        for t in threads:
            t.start()
        # Warm-up: at least a minute, and until the Deduplicator's 100,000-entry set is full (it fills once, then
        # stays bounded): growth before that is the set filling, not a leak.
        began = time.time()
        while time.time() - began < 60 or counts.by.get("webhook 200", 0) < 110_000:
            time.sleep(1)
            if time.time() - began > 900:
                raise SystemExit("the warm-up did not reach 110,000 webhooks in 15 minutes")
        warmup = time.time() - began
        samples = []
        started = time.time()
        while time.time() - started < SECONDS:
            time.sleep(5)
            samples.append((time.time() - started, rss_mib(proc.pid), len(os.listdir("/proc/%d/fd" % proc.pid)),
                            sqlite_mib(port), pending_jobs(port)))
        halt.set()
        for t in threads:
            t.join()
        time.sleep(20)  # past the keep-alive timeout
        end_fds = len(os.listdir("/proc/%d/fd" % proc.pid))
        # At rest the server has trimmed its heap (HEAP_TRIM_SEC): what stays is live memory, not freed and kept.
        rest_rss, rest_sqlite, rest_jobs = rss_mib(proc.pid), sqlite_mib(port), pending_jobs(port)
        warm = samples
        # Means over the first and the last quarter of the samples after the warm-up: single samples swing by
        # several MiB with the allocator's arenas.
        quarter = max(1, len(warm) // 4)
        mean = lambda rows, f: sum(f(r) for r in rows) / len(rows)  # noqa: E731
        first, last = mean(warm[:quarter], lambda r: r[1]), mean(warm[-quarter:], lambda r: r[1])
        growth = (last - first) / first * 100
        # What is not SQLite's (its caches grow to their configured limit with the data): the leak check.
        own_first = mean(warm[:quarter], lambda r: r[1] - r[3])
        own_last = mean(warm[-quarter:], lambda r: r[1] - r[3])
        own_growth = (own_last - own_first) / own_first * 100
        step = max(1, len(samples) // 24)
        print("soak: %.0f s of warm-up, then %d s measured; answers %s" % (warmup, SECONDS, dict(sorted(counts.by.items()))))
        print("RSS (means of the first and last quarter of the measured window): %.1f MiB, then %.1f MiB (%+.1f %%), "
              "peak %.1f MiB; samples: %s"
              % (first, last, growth, max(s[1] for s in samples), " ".join("%.0f" % s[1] for s in samples[::step])))
        print("SQLite memory (page caches): %s MiB" % " ".join("%.0f" % s[3] for s in samples[::step]))
        print("RSS without SQLite's memory: %.1f MiB, then %.1f MiB (%+.1f %%)"
              % (own_first, own_last, own_growth))
        print("at rest after the load: RSS %.1f MiB (SQLite %.1f MiB)" % (rest_rss, rest_sqlite))
        print("descriptors: %d idle before, up to %d under load, %d after it stopped"
              % (idle_fds, max(s[2] for s in samples), end_fds))
        workflow_runs = int(metric_sum(port, "wasla_jobs_finished_total", 'type="workflow.inbound",outcome="done"'))
        print("jobs pending: at most %d under load (samples: %s), %d at rest; workflow jobs run: %d"
              % (max(s[4] for s in samples), " ".join("%d" % s[4] for s in samples[::step]), rest_jobs, workflow_runs))
        errors = sum(n for k, n in counts.by.items() if k.split()[-1].startswith("5") or k.endswith(" error"))
        ok = (own_growth <= 10 and end_fds <= idle_fds + 4 and errors == 0 and rest_jobs == 0 and workflow_runs > 0
              and proc.poll() is None)
    finally:
        stop(proc)
        shutil.rmtree(data, ignore_errors=True)
    print("soak: %s" % ("memory flat, descriptors back to idle, jobs caught up, no 5xx" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
