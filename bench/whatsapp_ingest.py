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
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import func, select

from bench.load import percentile
from bot.stack import ROOT, free_port
from crm.conversations.models import InboundQueueItem
from crm.db import unit_of_work

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


WRK_TEMPLATE = """
local entries = dofile("%(data)s")
local n = #entries
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(delay)s
request = function()
  i = i + 1
  local e = {string.match(entries[((i - 1) %% n) + 1], "(%%S+) (%%S+) (%%S+)")}
  local body = %(prefix)s .. e[1] .. %(mid1)s .. e[1] .. %(mid2)s .. e[2] .. %(suffix)s
  wrk.headers["X-Hub-Signature-256"] = e[3]
  return wrk.format(nil, nil, nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format('WRK_JSON {"requests": %%d, "non2xx": %%d, "errors": %%d, "duration_us": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def run_wrk(url: str, senders: int, seconds: float, tmp: Path, rate: float | None = None) -> dict:
    """wrk (C, one thread) replays pre-signed, Meta-shaped webhooks with unique wamids: the load generator
    costs far less CPU than the server it measures, which matters on a 2-core machine."""
    marker_phone, marker_wamid = "PHONE_MARK", "WAMID_MARK"
    template = webhook_body(marker_phone, marker_wamid, "where is my order").decode()
    prefix, rest = template.split(marker_phone, 1)
    mid1, rest = rest.split(marker_phone, 1)
    mid2, suffix = rest.split(marker_wamid, 1)
    count = min(int(seconds * 6000) + 1000, 240_000)  # every request a new message (wrk cannot sign)
    lines = ["return {"]
    for k in range(count):
        phone, wamid = f"4915{k % senders:08d}", f"wamid.{uuid.uuid4().hex}"
        body = (prefix + phone + mid1 + phone + mid2 + wamid + suffix).encode()
        lines.append(f'"{phone} {wamid} {sign(body)}",')  # one constant per entry (Lua caps constants)
    lines.append("}")
    data = tmp / "bodies.lua"
    data.write_text("\n".join(lines))
    script = tmp / "ingest.lua"
    def lua(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    # With --rate each of the `senders` connections waits a random, exponentially distributed time with mean
    # senders/rate seconds between requests — Poisson arrivals, like independent shoppers — so the p99 is
    # measured at that offered load. (A fixed delay would make all connections fire in lock-step bursts.)
    delay = (f"math.randomseed(42)\ndelay = function() return -math.log(1 - math.random()) * "
             f"{1000.0 * senders / rate:.3f} end") if rate else ""
    script.write_text(WRK_TEMPLATE % {"data": data, "prefix": lua(prefix), "mid1": lua(mid1), "mid2": lua(mid2),
                                      "suffix": lua(suffix), "delay": delay})
    run = subprocess.run(["wrk", "-t1", f"-c{senders}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", str(script),
                          url], capture_output=True, text=True)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("WRK_JSON")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({run.returncode}): {run.stdout[-1000:]} {run.stderr[-1000:]}")
    stats = json.loads(line[len("WRK_JSON "):])
    elapsed = stats["duration_us"] / 1e6
    ok = stats["requests"] - stats["non2xx"] - stats["errors"]
    return {"driver": "wrk", "offered_per_s": rate or "max", "senders": senders, "seconds": round(elapsed, 2), "requests": stats["requests"],
            "accepted": ok, "non_2xx": stats["non2xx"], "socket_errors": stats["errors"],
            "accepted_per_s": round(ok / elapsed, 1), "p50_ms": round(stats["p50_us"] / 1000, 2),
            "p95_ms": round(stats["p95_us"] / 1000, 2), "p99_ms": round(stats["p99_us"] / 1000, 2)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--rate", type=float, action="append", default=None,
                        help="offered webhooks/s (open loop); repeat for several; default: as fast as possible")
    parser.add_argument("--driver", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python",
                        help="wrk (apt-get install wrk) or the asyncio/httpx client in this file")
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
            target = f"http://127.0.0.1:{port}/webhooks/whatsapp"
            asyncio.run(run_load(target, 10, 2))  # warm-up
            if args.driver == "wrk":
                runs = [run_wrk(target, args.senders, args.seconds, Path(tmp), rate) for rate in (args.rate or [None])]
            else:
                runs = [asyncio.run(run_load(target, args.senders, args.seconds))]
            result = {"runs": runs}
            if args.redis_url:  # every accepted webhook is really stored
                import redis

                result["stored"] = redis.Redis.from_url(args.redis_url).xlen("crossdesk:inbox")
            else:
                with unit_of_work(url) as session:
                    result["stored"] = session.scalar(select(func.count(InboundQueueItem.id)))
        finally:
            app.terminate()
            app.wait(20)
    result["store"] = "redis" if args.redis_url else ("postgresql" if url.startswith("postgresql") else "sqlite")
    for run in result["runs"]:
        print(f"offered {run.get('offered_per_s', 'max')}/s: accepted {run['accepted_per_s']}/s "
              f"p50 {run['p50_ms']} ms p95 {run['p95_ms']} ms p99 {run['p99_ms']} ms "
              f"non-2xx {run.get('non_2xx', 0)}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
