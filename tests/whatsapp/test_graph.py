from __future__ import annotations

import asyncio
import heapq
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from channels.core.messages import Button, OutboundMessage
from channels.whatsapp.graph import GraphClient, Pacer, SendContext, WhatsAppSender, within_window
from channels.whatsapp.wire import ErrorKind

TO = "+4915123456789"
NOW = datetime(2026, 3, 5, 12, 0, tzinfo=timezone.utc)
TEXT = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "4915123456789",
        "type": "text", "text": {"preview_url": False, "body": "hi"}}
TEMPLATES = {("reply", "en"): ("reply_reopen", "en_US"), ("reply", "de"): ("reply_reopen", "de")}


def run_client(graph, coro_fn, **options):
    sleeps: list[float] = []

    async def fake_sleep(seconds):
        sleeps.append(seconds)

    async def main():
        async with httpx.AsyncClient(trust_env=False) as http:
            client = GraphClient(graph.base_url, graph.phone_number_id, options.pop("token", graph.token), http,
                                 sleep=fake_sleep, rng=lambda: 1.0, **options)
            return await coro_fn(client)

    return asyncio.run(main()), sleeps


# ---------------------------------------------------------------- retries


@pytest.mark.parametrize("code", [130429, 131056])
def test_throttled_is_retried_with_exponential_backoff_then_succeeds(graph, code):
    graph.fail_next(2, code)
    result, sleeps = run_client(graph, lambda c: c.send(TEXT), base_delay=1.0, max_attempts=5)
    assert result.ok and result.wamid.startswith("wamid.FAKE")
    assert result.attempts == 3
    assert sleeps == [1.0, 2.0]  # rng=1.0 → the full exponential delay
    assert len(graph.received) == 3 and len(graph.accepted) == 1


def test_transient_500_is_retried_and_gives_up_after_max_attempts(graph):
    graph.fail_next(10, 131000, status=500)
    result, sleeps = run_client(graph, lambda c: c.send(TEXT), base_delay=0.5, max_delay=1.5, max_attempts=4)
    assert not result.ok
    assert (result.error_kind, result.error_code, result.attempts) == (ErrorKind.TRANSIENT, 131000, 4)
    assert sleeps == [0.5, 1.0, 1.5]  # capped at max_delay
    assert [r["status"] for r in graph.received] == [500] * 4


def test_jitter_keeps_delay_between_half_and_full():
    client = GraphClient("http://x", "1", "t", httpx.AsyncClient(), rng=lambda: 0.0, base_delay=2.0)
    assert client.backoff(1) == 1.0 and client.backoff(3) == 4.0
    client.rng = lambda: 0.5
    assert client.backoff(2) == 3.0
    assert client.backoff(1, retry_after=10) == 10


@pytest.mark.parametrize("code", [131026, 131051, 100])
def test_permanent_error_is_not_retried(graph, code):
    graph.fail_next(1, code)
    result, sleeps = run_client(graph, lambda c: c.send(TEXT))
    assert not result.ok
    assert (result.error_kind, result.error_code, result.attempts) == (ErrorKind.PERMANENT, code, 1)
    assert sleeps == [] and len(graph.received) == 1 and graph.accepted == []


def test_invalid_body_is_permanent_code_100(graph):
    bad = {**TEXT, "text": {"body": "x" * 5000}}
    result, _ = run_client(graph, lambda c: c.send(bad))
    assert (result.ok, result.error_kind, result.error_code) == (False, ErrorKind.PERMANENT, 100)
    assert "text.body" in result.error_title


def test_wrong_token_is_401_permanent(graph):
    result, sleeps = run_client(graph, lambda c: c.send(TEXT), token="wrong")
    assert (result.ok, result.error_kind, result.error_code, result.attempts) == (False, ErrorKind.PERMANENT, 190, 1)
    assert graph.received[0]["status"] == 401 and sleeps == []


def test_outside_window_is_returned_not_retried(graph):
    graph.fail_next(1, 131047)
    result, sleeps = run_client(graph, lambda c: c.send(TEXT))
    assert (result.ok, result.error_kind, result.error_code, result.attempts) == (
        False, ErrorKind.OUTSIDE_WINDOW, 131047, 1)
    assert sleeps == []


def test_network_error_is_transient_and_retried():
    async def main():
        async with httpx.AsyncClient(trust_env=False) as http:
            client = GraphClient("http://127.0.0.1:9", "1", "t", http, max_attempts=3, sleep=fake_sleep)
            return await client.send(TEXT)

    sleeps = []

    async def fake_sleep(s):
        sleeps.append(s)

    result = asyncio.run(main())
    assert (result.ok, result.error_kind, result.attempts) == (False, ErrorKind.TRANSIENT, 3)
    assert len(sleeps) == 2


# ---------------------------------------------------------------- 24-hour window and templates


def sender_run(graph, coro_fn, templates=TEMPLATES):
    async def fake_sleep(seconds):
        pass

    async def main():
        async with httpx.AsyncClient(trust_env=False) as http:
            client = GraphClient(graph.base_url, graph.phone_number_id, graph.token, http, sleep=fake_sleep)
            return await coro_fn(WhatsAppSender(client, templates=templates))

    return asyncio.run(main())


def ctx(hours_ago: float | None, language="en"):
    last = None if hours_ago is None else NOW - timedelta(hours=hours_ago)
    return SendContext(last_inbound_at=last, language=language, now=NOW)


def test_window_boundaries():
    assert within_window(ctx(23.99)) and not within_window(ctx(24)) and not within_window(ctx(None))
    naive = SendContext(last_inbound_at=(NOW - timedelta(hours=1)).replace(tzinfo=None), language="en", now=NOW)
    assert within_window(naive)


def test_inside_window_sends_the_messages_one_result_each(graph):
    msgs = [OutboundMessage("Your parcel is in Leipzig."),
            OutboundMessage("Anything else?", (Button("Yes", "/affirm"), Button("No", "/deny")))]
    results = sender_run(graph, lambda s: s.send(TO, msgs, ctx(2)))
    assert [r.ok for r in results] == [True, True]
    assert [p["type"] for p in graph.accepted] == ["text", "interactive"]
    assert graph.accepted[0]["text"]["body"] == "Your parcel is in Leipzig."
    assert results[0].wamid != results[1].wamid and results[1].template is None


def test_split_message_reports_all_wamids(graph):
    [result] = sender_run(graph, lambda s: s.send(TO, [OutboundMessage("Hello there. " * 700)], ctx(1)))
    assert result.ok and len(result.wamids) == 3 and result.wamid == result.wamids[-1]
    assert len(graph.accepted) == 3


def test_outside_window_sends_the_template_in_the_shoppers_language(graph):
    msgs = [OutboundMessage("Your refund was issued."), OutboundMessage("Anything else?")]
    results = sender_run(graph, lambda s: s.send(TO, msgs, ctx(30, language="de")))
    assert len(graph.accepted) == 1
    assert graph.accepted[0]["type"] == "template"
    assert graph.accepted[0]["template"] == {"name": "reply_reopen", "language": {"code": "de"}}
    assert len(results) == 2 and all(r.ok and r.template == "reply_reopen" for r in results)


def test_outside_window_falls_back_to_english_template(graph):
    results = sender_run(graph, lambda s: s.send(TO, [OutboundMessage("x")], ctx(None, language="ja")))
    assert results[0].ok
    assert graph.accepted[0]["template"]["language"] == {"code": "en_US"}


def test_131047_inside_our_window_falls_back_to_template(graph):
    graph.fail_next(1, 131047)
    msgs = [OutboundMessage("first"), OutboundMessage("second")]
    results = sender_run(graph, lambda s: s.send(TO, msgs, ctx(1)))
    assert [p["type"] for p in graph.accepted] == ["template"]  # "first" refused, "second" never tried
    assert all(r.ok and r.template == "reply_reopen" for r in results) and len(results) == 2


def test_outside_window_without_template_is_permanent(graph):
    results = sender_run(graph, lambda s: s.send(TO, [OutboundMessage("x")], ctx(48)), templates={})
    [r] = results
    assert (r.ok, r.error_kind, r.error_title) == (False, ErrorKind.PERMANENT, "outside_window_no_template")
    assert r.error == "outside_window_no_template"
    assert graph.received == []


def test_permanent_failure_of_one_message_does_not_stop_the_next(graph):
    graph.fail_next(1, 131026)
    results = sender_run(graph, lambda s: s.send(TO, [OutboundMessage("a"), OutboundMessage("b")], ctx(1)))
    assert [(r.ok, r.error_code) for r in results] == [(False, 131026), (True, None)]
    assert [p["text"]["body"] for p in graph.accepted] == ["b"]


def test_send_context_from_delivery_context():
    class Delivery:
        last_inbound_at, language, now = NOW - timedelta(hours=3), "fr", NOW

    c = SendContext.from_delivery(Delivery())
    assert (c.last_inbound_at, c.language, c.now, c.purpose) == (NOW - timedelta(hours=3), "fr", NOW, "reply")


# ---------------------------------------------------------------- pacing


def test_pacer_global_rate_80_per_second(clock):
    pacer = Pacer(rate=80, per=1.0, recipient_interval=6.0, clock=clock, sleep=clock.sleep)
    start = clock.now
    grants = asyncio.run(clock.run(*(pacer.acquire(f"+49151000{i:05d}") for i in range(200))))
    assert len(grants) == 200  # nothing dropped
    offsets = sorted(g - start for g in grants)
    assert offsets[:80] == [0.0] * 80 and offsets[80:160] == [1.0] * 80 and offsets[160:] == [2.0] * 40
    for t in offsets:  # any 1-second window holds at most 80 sends
        assert sum(1 for u in offsets if t <= u < t + 1.0) <= 80


def test_pacer_one_message_per_6s_per_recipient_in_order(clock):
    pacer = Pacer(rate=80, recipient_interval=6.0, burst=1, clock=clock, sleep=clock.sleep)
    start = clock.now
    log: list[tuple[str, int, float]] = []

    async def send(recipient, n):
        granted = await pacer.acquire(recipient)
        log.append((recipient, n, granted - start))

    calls = [send(r, n) for n in range(5) for r in ("+491", "+492")]
    asyncio.run(clock.run(*calls))
    assert len(log) == 10
    per = defaultdict(list)
    for recipient, n, t in log:
        per[recipient].append((n, t))
    for recipient, items in per.items():
        assert [n for n, _ in items] == [0, 1, 2, 3, 4]  # order preserved
        assert [t for _, t in items] == [0.0, 6.0, 12.0, 18.0, 24.0]


def test_pacer_burst_then_paced(clock):
    pacer = Pacer(recipient_interval=6.0, burst=3, clock=clock, sleep=clock.sleep)
    start = clock.now
    grants = asyncio.run(clock.run(*(pacer.acquire("+491") for _ in range(6))))
    assert [g - start for g in grants] == [0.0, 0.0, 0.0, 6.0, 12.0, 18.0]


def test_pacer_recipient_is_free_again_after_the_interval(clock):
    pacer = Pacer(recipient_interval=6.0, clock=clock, sleep=clock.sleep)

    async def scenario():
        first = await pacer.acquire("+491")
        clock.now += 10
        second = await pacer.acquire("+491")
        return second - first

    assert asyncio.run(clock.run(scenario())) == [10.0]
    assert clock.sleeps == []


def test_sender_preserves_order_of_concurrent_sends_to_one_recipient(graph, clock):
    """A bot reply and an agent reply racing for the same shopper: neither interleaves with the other."""
    async def main():
        async with httpx.AsyncClient(trust_env=False) as http:
            pacer = Pacer(recipient_interval=6.0, clock=clock, sleep=clock.sleep)
            client = GraphClient(graph.base_url, graph.phone_number_id, graph.token, http, pacer=pacer)
            sender = WhatsAppSender(client, templates=TEMPLATES)
            bot = sender.send(TO, [OutboundMessage(f"bot {i}") for i in range(3)], ctx(1))
            agent = sender.send(TO, [OutboundMessage(f"agent {i}") for i in range(2)], ctx(1))
            return await asyncio.gather(bot, agent)

    async def driver():
        task = asyncio.ensure_future(main())
        while not task.done():  # real HTTP runs on the loop; virtual time advances only when all are parked
            await asyncio.sleep(0.01)
            if clock._waiters and not task.done():
                deadline = clock._waiters[0][0]
                clock.now = max(clock.now, deadline)
                while clock._waiters and clock._waiters[0][0] <= clock.now:
                    heapq.heappop(clock._waiters)[2].set_result(None)
        return task.result()

    bot_results, agent_results = asyncio.run(driver())
    assert all(r.ok for r in bot_results + agent_results)
    assert [p["text"]["body"] for p in graph.accepted] == ["bot 0", "bot 1", "bot 2", "agent 0", "agent 1"]
    assert [s for s in clock.sleeps if s > 0] == [6.0] * 4
