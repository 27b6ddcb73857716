#!/usr/bin/env python3
"""Browser test of the dashboard (make e2e).

Starts, on 127.0.0.1 only: a loopback fake of Meta's Graph API (records every send), and the wasla binary on a
temporary data directory with one admin user. Sends a signed sample webhook through the real ingest path, then
drives headless Chromium through Selenium: the real sign-in form, the inbox, a conversation, a reply (which must
reach the fake Graph API), sign-out. Screenshots go to e2e-artifacts/. Every process started here is stopped by
its PID at the end, whatever happens.
"""
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Tests", "pysupport"))
from server import free_port, stop, wait_port  # noqa: E402
ARTIFACTS = os.path.join(ROOT, "e2e-artifacts")
SECRET = "e2e-app-secret-0123456789"
EMAIL, PASSWORD = "admin@example.com", "e2e password 123"
SENT = []


class FakeGraph(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        SENT.append({"path": self.path, "auth": self.headers.get("Authorization"), "json": json.loads(body or b"{}")})
        answer = json.dumps({"messaging_product": "whatsapp", "contacts": [{"input": "x", "wa_id": "x"}],
                             "messages": [{"id": "wamid.E2E%d" % len(SENT)}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def signed_webhook(port):
    now = int(time.time())
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "200000000000002", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000100", "phone_number_id": "100000000000001"},
            "contacts": [{"profile": {"name": "سارة Sara"}, "wa_id": "15550000001"}],
            "messages": [
                {"from": "15550000001", "id": "wamid.IN1", "timestamp": str(now), "type": "text",
                 "text": {"body": "مرحبا! Is order A-1001 shipped?"}},
                {"from": "15550000001", "id": "wamid.IN2", "timestamp": str(now), "type": "location",
                 "location": {"latitude": 30.0444, "longitude": 31.2357, "name": "Cairo"}},
            ]}}]}]}, separators=(",", ":")).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    req = urllib.request.Request("http://127.0.0.1:%d/api/webhook" % port, data=body, method="POST",
                                 headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, r.status


def pywa_through_the_proxy(binary, env, port):
    """A real Cloud API client library from PyPI (pywa), pointed at Wasla's Graph-compatible proxy by rewriting only
    the host of its requests, with a Wasla API key as its token: a send and a mark-as-read must reach the fake Graph API."""
    import httpx
    from pywa import WhatsApp

    out = subprocess.run([binary, "keys", "create", "--name", "pywa", "--scopes", "send"], env=env, capture_output=True,
                         text=True, check=True).stdout
    key = out.split()[0]

    class ToWasla(httpx.HTTPTransport):
        def handle_request(self, request):
            request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=port)
            return super().handle_request(request)

    wa = WhatsApp(phone_id="100000000000001", token=key, session=httpx.Client(transport=ToWasla()), api_version="21.0")
    before = len(SENT)
    sent = wa.send_message(to="15550000001", text="Sent by pywa through Wasla")
    assert sent.id.startswith("wamid.E2E"), sent
    assert SENT[-1]["json"]["text"]["body"] == "Sent by pywa through Wasla" and SENT[-1]["auth"] == "Bearer e2e-token", SENT[-1]
    assert wa.mark_message_as_read(message_id="wamid.IN1") is not None
    assert SENT[-1]["json"].get("status") == "read" and len(SENT) == before + 2, SENT[-1]
    print("e2e: pywa %s sent and marked read through the Graph-compatible proxy: OK" % __import__("pywa").__version__)


def main():
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.chrome.service import Service

    binary = os.path.join(ROOT, ".build", "debug", "wasla")
    if not os.access(binary, os.X_OK):
        raise SystemExit("build first: swift build --product wasla")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    os.makedirs(ARTIFACTS)
    graph = ThreadingHTTPServer(("127.0.0.1", 0), FakeGraph)
    threading.Thread(target=graph.serve_forever, daemon=True).start()
    data = tempfile.mkdtemp(prefix="wasla-e2e-")
    port = free_port()
    env = dict(os.environ, DATA_DIR=data, HOST="127.0.0.1", PORT=str(port), LOG_FORMAT="text",
               WHATSAPP_APP_SECRET=SECRET, WHATSAPP_ACCESS_TOKEN="e2e-token",
               WHATSAPP_GRAPH_URL="http://127.0.0.1:%d" % graph.server_address[1],
               BASIC_AUTH_USERS="%s:%s:admin" % (EMAIL, PASSWORD), SESSION_SECRET="e2e-session-secret-" + "x" * 20)
    log = open(os.path.join(ARTIFACTS, "wasla.log"), "w")
    server = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=log)
    driver = None
    try:
        wait_port(port)
        signed_webhook(port)
        time.sleep(1.0)  # the background processor turns the stored event into a conversation
        options = webdriver.ChromeOptions()
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
            options.add_argument(arg)
        chrome = shutil.which("chromium") or shutil.which("chromium-browser")
        if chrome:
            options.binary_location = chrome
        service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
        driver = webdriver.Chrome(service=service, options=options)
        base = "http://localhost:%d" % port  # localhost: a secure context, so the __Host- cookie is kept

        driver.get(base + "/inbox")
        assert "/login" in driver.current_url, driver.current_url
        driver.save_screenshot(os.path.join(ARTIFACTS, "1-login.png"))
        driver.find_element(By.NAME, "email").send_keys(EMAIL)
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
        time.sleep(0.5)
        assert driver.current_url.endswith("/inbox"), driver.current_url
        assert "سارة Sara" in driver.page_source, "the inbox lists the contact"
        driver.save_screenshot(os.path.join(ARTIFACTS, "2-inbox.png"))

        driver.find_element(By.PARTIAL_LINK_TEXT, "Sara").click()
        time.sleep(0.5)
        page = driver.page_source
        assert "Is order A-1001 shipped?" in page and "[location]" in page, "the thread shows both messages"
        driver.save_screenshot(os.path.join(ARTIFACTS, "3-conversation.png"))

        driver.find_element(By.NAME, "text").send_keys("أهلاً! Yes, it shipped today.")
        driver.find_element(By.CSS_SELECTOR, "form[action$='/reply'] button").click()
        time.sleep(0.5)
        assert any(s["json"].get("text", {}).get("body") == "أهلاً! Yes, it shipped today." for s in SENT), SENT
        assert SENT[-1]["auth"] == "Bearer e2e-token" and SENT[-1]["json"]["to"] == "15550000001", SENT[-1]
        assert "Yes, it shipped today." in driver.page_source, "the reply shows in the thread"
        driver.save_screenshot(os.path.join(ARTIFACTS, "4-replied.png"))

        driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
        time.sleep(0.3)
        driver.get(base + "/inbox")
        assert "/login" in driver.current_url, "signed out"
        print("e2e: sign-in, inbox, conversation, reply through the fake Graph API, sign-out: OK; screenshots in e2e-artifacts/")
        pywa_through_the_proxy(binary, env, port)
    finally:
        if driver is not None:
            driver.quit()
        stop(server)
        graph.shutdown()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
