"""Signed WhatsApp webhook ingestion: how many webhooks/s the app accepts and how fast it answers 200.

Starts the app alone (uvicorn, one process) on a fresh database with the inbox worker paused, so what is
measured is exactly the webhook path Meta waits on: read body → check X-Hub-Signature-256 → parse →
store durably (with de-duplication) → 200. Then `--senders` concurrent senders each post signed,
Meta-shaped text webhooks (unique wamids) for `--seconds`.

    bin/crossdesk bench-whatsapp [--senders 50 --seconds 20] [--redis-url redis://127.0.0.1:6379/0]
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

import httpx

from bench.load import percentile
from bot.stack import ROOT, free_port

SECRET = "bench-app-secret"


def webhook_body(phone: str, wamid: str, text: str) -> bytes:
    """A text message webhook exactly as Meta documents it."""
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                  "contacts": [{"profile": {"name": "Shopper"}, "wa_id": phone}],
                  "messages": [{"from": phone, "id": wamid, "timestamp": str(int(time.time())),
                                "text": {"body": text}, "type": "text"}]},
        "field": "messages"}]}]}).encode()


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


async def run_load(url: str, senders: int, seconds: float) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        async def sender(i: int) -> None:
            phone = f"4915{i:08d}"
            n = 0
            while time.perf_counter() < deadline:
                n += 1
                body = webhook_body(phone, f"wamid.{uuid.uuid4().hex}", f"where is my order {n}")
                t0 = time.perf_counter()
                try:
                    resp = await client.post(url, content=body, headers={
                        "content-type": "application/json", "x-hub-signature-256": sign(body)})
                    code = resp.status_code
                except httpx.HTTPError:
                    code = 0
                latencies.append((time.perf_counter() - t0) * 1000)
                statuses[code] = statuses.get(code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(sender(i) for i in range(senders)))
        elapsed = time.perf_counter() - started
    ok = statuses.get(200, 0)
    return {"senders": senders, "seconds": round(elapsed, 2), "requests": len(latencies), "accepted": ok,
            "statuses": statuses, "accepted_per_s": round(ok / elapsed, 1),
            "p50_ms": round(percentile(latencies, 50), 2), "p95_ms": round(percentile(latencies, 95), 2),
            "p99_ms": round(percentile(latencies, 99), 2)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crossdesk-wa-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/ingest.db"
        from crm.migrate import upgrade

        upgrade(url)
        port = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT), DATABASE_URL=url, CROSSDESK_HOME=tmp,
                   WHATSAPP_APP_SECRET=SECRET, WHATSAPP_VERIFY_TOKEN="v", WHATSAPP_ACCESS_TOKEN="t",
                   WHATSAPP_PHONE_NUMBER_ID="106540352242922", CROSSDESK_INBOX_WORKER="0",
                   RASA_URL="http://127.0.0.1:9")
        env.pop("REDIS_URL", None)
        if args.redis_url:
            env["REDIS_URL"] = args.redis_url
        app = subprocess.Popen([sys.executable, "-m", "uvicorn", "channels.app:app", "--host", "127.0.0.1",
                                "--port", str(port), "--no-access-log", "--log-level", "warning"],
                               cwd=ROOT, env=env)
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            asyncio.run(run_load(f"http://127.0.0.1:{port}/webhooks/whatsapp", 10, 2))  # warm-up
            result = asyncio.run(run_load(f"http://127.0.0.1:{port}/webhooks/whatsapp", args.senders, args.seconds))
        finally:
            app.terminate()
            app.wait(20)
    result["store"] = "redis" if args.redis_url else ("postgresql" if url.startswith("postgresql") else "sqlite")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
