#!/usr/bin/env python3
"""Hostile framing cases against two independent reference parsers (make torture).

Each case of hardening.md §2 is sent as raw bytes to the release binary's `POST /api/webhook` (127.0.0.1 only)
and fed to h11 and httptools (PyPI). The rules checked:
- where either reference parser rejects the framing, Wasla must not answer 200;
- where Wasla answers 200, the body it stored is the one the references read: the request is signed over the
  references' body, and Wasla answers 200 only when the bytes it read verify against that signature;
- Wasla may be stricter than the references (it rejects bare LF, for example); those cases are listed.
The server is stopped by its PID at the end.
"""
import hashlib
import hmac
import os
import shutil
import socket
import sys
import tempfile

import h11
import httptools

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Tests", "pysupport"))
from server import free_port, start, stop  # noqa: E402
BINARY = os.path.join(ROOT, ".build", "release", "wasla")
SECRET = b"framing-secret-0123456789"

# name -> (head lines after the request line, body bytes as sent). "{SIG}" is replaced by the signature over the
# body the reference parsers read. Every case gets a unique body so no duplicate can hide a difference.
CASES = {
    "content-length": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nContent-Length: 6\r\n", b"case01"),
    "chunked": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nTransfer-Encoding: chunked\r\n", b"6\r\ncase02\r\n0\r\n\r\n"),
    "chunked in pieces": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nTransfer-Encoding: chunked\r\n",
                          b"3\r\ncas\r\n3\r\ne03\r\n0\r\n\r\n"),
    "chunk extension": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nTransfer-Encoding: chunked\r\n", b"6;a=b\r\ncase04\r\n0\r\n\r\n"),
    "trailer field": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nTransfer-Encoding: chunked\r\n",
                      b"6\r\ncase05\r\n0\r\nX-Trailer: t\r\n\r\n"),
    "CL and TE": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n",
                  b"6\r\ncase06\r\n0\r\n\r\n"),
    "TE gzip, chunked": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nTransfer-Encoding: gzip, chunked\r\n", b"6\r\ncase07\r\n0\r\n\r\n"),
    "TE chunked twice": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nTransfer-Encoding: chunked, chunked\r\n",
                         b"6\r\ncase08\r\n0\r\n\r\n"),
    "TE not last chunked": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nTransfer-Encoding: chunked, identity\r\n",
                            b"6\r\ncase09\r\n0\r\n\r\n"),
    "CL twice equal": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nContent-Length: 6\r\nContent-Length: 6\r\n", b"case10"),
    "CL twice different": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nContent-Length: 6\r\nContent-Length: 2\r\n", b"case11"),
    "CL list": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nContent-Length: 6, 6\r\n", b"case12"),
    "CL plus sign": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nContent-Length: +6\r\n", b"case13"),
    "CL hex": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nContent-Length: 0x6\r\n", b"case14"),
    "CL huge": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nContent-Length: 99999999999999999999999\r\n", b"case15"),
    "chunk size 0x": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nTransfer-Encoding: chunked\r\n", b"0x6\r\ncase16\r\n0\r\n\r\n"),
    "chunk size negative": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nTransfer-Encoding: chunked\r\n", b"-6\r\ncase17\r\n0\r\n\r\n"),
    "chunk size too long": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nTransfer-Encoding: chunked\r\n",
                            b"00000000000000006\r\ncase18\r\n0\r\n\r\n"),
    "chunk data without CRLF": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nTransfer-Encoding: chunked\r\n",
                                b"6\r\ncase19XX0\r\n\r\n"),
    "chunk line bare LF": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nTransfer-Encoding: chunked\r\n", b"6\ncase20\r\n0\r\n\r\n"),
    "obs-fold": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nX-Folded: a\r\n b\r\nContent-Length: 6\r\n", b"case21"),
    "space before colon": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nContent-Length : 6\r\n", b"case22"),
    "bare LF line ends": ("Host: x\nX-Hub-Signature-256: {SIG}\nContent-Length: 6\n", b"case23"),
    "NUL in a value": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nX-Nul: a\x00b\r\nContent-Length: 6\r\n", b"case24"),
    "bad field name": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nBad Name: v\r\nContent-Length: 6\r\n", b"case25"),
    "no Host": ("X-Hub-Signature-256: {SIG}\r\nContent-Length: 6\r\n", b"case26"),
    "two Hosts": ("Host: x\r\nHost: y\r\nX-Hub-Signature-256: {SIG}\r\nContent-Length: 6\r\n", b"case27"),
    "bare CR in a value": ("Host: x\r\nX-Hub-Signature-256: {SIG}\r\nX-Cr: a\rb\r\nContent-Length: 6\r\n", b"case28"),
}
HTTP10_TE = ("X-Hub-Signature-256: {SIG}\r\nTransfer-Encoding: chunked\r\n", b"6\r\ncase29\r\n0\r\n\r\n")


def request_bytes(head, body, signature, version=b"HTTP/1.1"):
    return b"POST /api/webhook " + version + b"\r\n" + head.replace("{SIG}", signature).encode("latin-1") + b"\r\n" + body


def with_h11(raw):
    conn = h11.Connection(h11.SERVER)
    body = b""
    try:
        conn.receive_data(raw)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return None  # incomplete: not accepted as a whole message
            if isinstance(event, h11.Data):
                body += event.data
            if isinstance(event, h11.EndOfMessage):
                return body
    except h11.RemoteProtocolError:
        return None


def with_httptools(raw):
    class Collect:
        def __init__(self):
            self.body, self.done = b"", False

        def on_body(self, data):
            self.body += data

        def on_message_complete(self):
            self.done = True

    c = Collect()
    try:
        httptools.HttpRequestParser(c).feed_data(raw)
    except httptools.HttpParserError:
        return None
    return c.body if c.done else None


def send(port, raw):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            return 0
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def main():
    if not os.access(BINARY, os.X_OK):
        raise SystemExit("build first: make build")
    data = tempfile.mkdtemp(prefix="wasla-framing-")
    port = free_port()
    env = dict(os.environ, DATA_DIR=data, HOST="127.0.0.1", PORT=str(port), LOG_LEVEL="error",
               WHATSAPP_APP_SECRET=SECRET.decode())
    server = start(BINARY, env, port)
    failures, stricter, rows = [], [], 0
    try:
        cases = [(name, head, body, b"HTTP/1.1") for name, (head, body) in CASES.items()]
        cases.append(("HTTP/1.0 with TE", HTTP10_TE[0], HTTP10_TE[1], b"HTTP/1.0"))
        for name, head, body, version in cases:
            probe = request_bytes(head, body, "sha256=" + "0" * 64, version)
            ref_a, ref_b = with_h11(probe), with_httptools(probe)
            intended = ref_a if ref_a is not None else (ref_b if ref_b is not None else body)
            sig = "sha256=" + hmac.new(SECRET, intended, hashlib.sha256).hexdigest()
            raw = request_bytes(head, body, sig, version)
            a, b = with_h11(raw), with_httptools(raw)
            status = send(port, raw)
            rows += 1
            refs = "h11 %-8s httptools %-8s" % ("accepts" if a is not None else "rejects", "accepts" if b is not None else "rejects")
            print("%-26s %s wasla %d" % (name, refs, status))
            if (a is None or b is None) and status == 200:
                failures.append("%s: a reference parser rejects the framing but Wasla answered 200" % name)
            if a is not None and b is not None and a != b:
                print("   (the reference parsers disagree on the body: %r vs %r)" % (a, b))
            if a is not None and b is not None and status != 200:
                stricter.append(name)
        print("%d cases; Wasla stricter than both references on: %s" % (rows, ", ".join(stricter) or "none"))
        if failures:
            print("FRAMING FAILED:\n  " + "\n  ".join(failures))
            return 1
        print("check: wherever a reference parser rejects the framing Wasla does too, and every 200 read the "
              "references' body (its signature verified)")
        return 0
    finally:
        stop(server)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
