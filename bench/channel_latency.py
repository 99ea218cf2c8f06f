"""End-to-end reply latency per channel, one shopper at a time, through the whole stack.

REST: POST → replies in the response. Web: WebSocket frame → bot message frame. WhatsApp: signed webhook →
the reply reaching a Graph API server on loopback (the same fake the tests use). Email: mail appended to a
real Dovecot mailbox → reply received by an SMTP server on loopback; this includes the IMAP poll interval
(`--imap-interval`, the app's IMAP_POLL_INTERVAL), which a shop tunes (or replaces with the webhook).

    bin/crossdesk bench-channels [--messages 20 --imap-interval 1]
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import subprocess
import tempfile
import time
import uuid
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import httpx
from websockets.sync.client import connect as ws_connect

from bench.load import percentile
from bot.stack import Stack, ensure_model, free_port
from tests.email.conftest import DOVECOT, IMAP_PASSWORD, IMAP_USER, _Capture, dovecot_config, wait_for_port
from tests.whatsapp.fake_graph import FakeGraph

SECRET = "bench-whatsapp-secret"
TEXTS = ["hello", "thanks", "are you a bot?", "hi there", "thank you"]


def summary(samples: list[float]) -> dict:
    return {"n": len(samples), "p50_ms": round(percentile(samples, 50), 1), "p95_ms": round(percentile(samples, 95), 1),
            "max_ms": round(max(samples), 1)}


def wait(predicate, timeout=60.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("no reply")
        time.sleep(0.002)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--imap-interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    from aiosmtpd.controller import Controller

    from bench.run import seed

    with tempfile.TemporaryDirectory(prefix="crossdesk-lat-") as tmp:
        root = Path(tmp)
        url = f"sqlite:///{root}/lat.db"
        seed(url)
        graph = FakeGraph(token="bench-token").start()
        imap_port = free_port()
        (root / "dovecot").mkdir()
        conf = root / "dovecot" / "dovecot.conf"
        conf.write_text(dovecot_config(root / "dovecot", imap_port))
        dovecot = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(imap_port, dovecot, root / "dovecot" / "dovecot.log")
        capture = _Capture()
        smtp = Controller(capture, hostname="127.0.0.1", port=free_port())
        smtp.start()
        stack = Stack(model=ensure_model(), state_dir=root, database_url=url, extra_env={
            "WHATSAPP_APP_SECRET": SECRET, "WHATSAPP_VERIFY_TOKEN": "v", "WHATSAPP_ACCESS_TOKEN": "bench-token",
            "WHATSAPP_PHONE_NUMBER_ID": graph.phone_number_id, "WHATSAPP_GRAPH_URL": graph.base_url,
            "IMAP_HOST": "127.0.0.1", "IMAP_PORT": str(imap_port), "IMAP_USER": IMAP_USER,
            "IMAP_PASSWORD": IMAP_PASSWORD, "IMAP_SSL": "0", "IMAP_POLL_INTERVAL": str(args.imap_interval),
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_FROM": "support@shop.example",
            "SMTP_STARTTLS": "0", "CROSSDESK_SENDER_RATE_LIMIT": "100000"})
        results: dict[str, dict] = {}
        try:
            stack.start()
            texts = [TEXTS[i % len(TEXTS)] for i in range(args.messages)]
            # REST
            with httpx.Client(timeout=60) as client:
                samples, sender = [], f"bench-{uuid.uuid4().hex[:8]}"
                for text in texts:
                    t0 = time.perf_counter()
                    client.post(f"{stack.app_url}/webhooks/rest/webhook", json={"sender": sender, "message": text})
                    samples.append((time.perf_counter() - t0) * 1000)
                results["rest"] = summary(samples)
            # Web chat
            samples = []
            session = uuid.uuid4().hex
            with ws_connect(f"ws://127.0.0.1:{stack.app_port}/ws/chat?session={session}") as ws:
                for text in texts:
                    t0 = time.perf_counter()
                    ws.send(json.dumps({"type": "message", "text": text, "client_id": uuid.uuid4().hex}))
                    while json.loads(ws.recv(timeout=60)).get("type") != "message":
                        pass
                    samples.append((time.perf_counter() - t0) * 1000)
                    while True:  # drain the other frames of this turn
                        try:
                            ws.recv(timeout=0.3)
                        except TimeoutError:
                            break
            results["web"] = summary(samples)
            # WhatsApp
            samples, phone = [], f"4915{uuid.uuid4().int % 10**8:08d}"
            with httpx.Client(timeout=30) as client:
                for text in texts:
                    before = len(graph.accepted)
                    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{
                        "field": "messages", "value": {"messaging_product": "whatsapp",
                                                       "metadata": {"display_phone_number": "1",
                                                                    "phone_number_id": graph.phone_number_id},
                                                       "contacts": [{"profile": {"name": "S"}, "wa_id": phone}],
                                                       "messages": [{"from": phone, "id": f"wamid.{uuid.uuid4().hex}",
                                                                     "timestamp": str(int(time.time())), "type": "text",
                                                                     "text": {"body": text}}]}}]}]}).encode()
                    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                    t0 = time.perf_counter()
                    client.post(f"{stack.app_url}/webhooks/whatsapp", content=body,
                                headers={"content-type": "application/json", "x-hub-signature-256": sig})
                    wait(lambda: len(graph.accepted) > before)
                    samples.append((time.perf_counter() - t0) * 1000)
                    time.sleep(6.5)  # WhatsApp pacing: one message per ~6 s to the same shopper (burst of 3)
            results["whatsapp"] = summary(samples)
            # Email
            import imaplib

            samples = []
            for text in texts[: max(5, args.messages // 4)]:
                before = len(capture.messages)
                msg = EmailMessage()
                msg["From"], msg["To"], msg["Subject"] = "shopper@example.org", "support@shop.example", text
                msg["Message-ID"] = make_msgid(domain="example.org")
                msg["Date"] = datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")
                msg.set_content(text)
                conn = imaplib.IMAP4("127.0.0.1", imap_port)
                conn.login(IMAP_USER, IMAP_PASSWORD)
                t0 = time.perf_counter()
                conn.append("INBOX", "", None, msg.as_bytes())
                conn.logout()
                wait(lambda: len(capture.messages) > before)
                samples.append((time.perf_counter() - t0) * 1000)
            results["email"] = summary(samples) | {"imap_poll_interval_s": args.imap_interval}
        finally:
            stack.stop()
            smtp.stop()
            graph.stop()
            dovecot.terminate()
            dovecot.wait(10)
    for channel, s in results.items():
        print(f"{channel:<9} n={s['n']:<3} p50 {s['p50_ms']} ms  p95 {s['p95_ms']} ms  max {s['max_ms']} ms")
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
