"""Starting and stopping the wasla binary on 127.0.0.1 for the Python test and benchmark scripts
(Tests/e2e, Tests/torture, Benchmarks/memory.py): one copy of the port, start-up and SIGTERM handling."""
import hashlib
import json
import hmac
import signal
import socket
import subprocess
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit("the server exited at start (status %s)" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not start on port %d" % port)


def start(binary, env, port, **popen):
    """Starts `binary serve` with PORT set and waits until it accepts connections."""
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.DEVNULL)
    proc = subprocess.Popen([binary, "serve"], env=dict(env, PORT=str(port)), **popen)
    wait_port(port, proc)
    return proc


def stop(proc, grace=40):
    """SIGTERM, then SIGKILL after `grace` seconds: the process never outlives the script."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mib(pid):
    """Resident memory of a process in MiB (VmRSS), 0 when it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0

def read_response(sock, buf):
    """Returns (status, rest of the buffer) for one response with Content-Length framing."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    return status, rest[length:]


def text_message_body(wamid, text, sender="15550000001", name=None, timestamp="1700000000"):
    """A Meta `messages` webhook body with one inbound text message (and the sender's profile when `name` is
    given), to the test number 100000000000001, as compact JSON bytes."""
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550000100", "phone_number_id": "100000000000001"}}
    if name is not None:
        value["contacts"] = [{"profile": {"name": name}, "wa_id": sender}]
    value["messages"] = [{"from": sender, "id": wamid, "timestamp": str(timestamp), "type": "text",
                          "text": {"body": text}}]
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "200000000000002", "changes": [{
        "field": "messages", "value": value}]}]}, separators=(",", ":")).encode()


def webhook_request(secret, body, close=False):
    """POST /api/webhook as Meta sends it: X-Hub-Signature-256 is HMAC-SHA256 of the exact body bytes."""
    sig = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return (b"POST /api/webhook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: " + sig.encode()
            + b"\r\nContent-Length: " + str(len(body)).encode() + (b"\r\nConnection: close" if close else b"")
            + b"\r\n\r\n" + body)
