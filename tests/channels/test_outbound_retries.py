"""Durable outbound retries on real peers: an SMTP server (aiosmtpd) that answers 4xx or drops the connection,
and the fake Graph API that throttles or never answers. A temporary failure is sent again later, exactly
once; a send whose answer was lost is never repeated; what a stopped process left is picked up."""
from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import update

from channels.core.messages import OutboundMessage
from channels.core.outbound import ChannelAdapter, Outbound, RetryPolicy
from channels.email.smtp import EmailSendContext, SmtpSender
from channels.whatsapp.graph import GraphClient, SendContext, WhatsAppSender
from crm.conversations.models import Message
from crm.db import unit_of_work
from tests.channels.test_outbound import make_conversation, rows
from tests.email.conftest import free_port
from tests.whatsapp.fake_graph import FakeGraph

POLICY = RetryPolicy(max_attempts=3, base_s=30, cap_s=600)


def later(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def attempts(conv_id):
    with unit_of_work() as session:
        return [(m.delivery_status, m.delivery_attempts, m.retry_at is not None)
                for m in session.query(Message).filter_by(conversation_id=conv_id, direction="out").order_by(Message.id)]


# ------------------------------------------------------------------ SMTP


class ScriptedSmtp:
    """aiosmtpd handler answering the DATA of successive emails from a script: "451", "250", or "drop"
    (read the whole message, then close the connection without an answer)."""

    def __init__(self, script):
        self.script = list(script)
        self.received: list[bytes] = []  # every email whose content reached the server
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received.append(envelope.original_content or envelope.content)
            step = self.script.pop(0) if self.script else "250"
        if step == "drop":
            server.transport.close()
            return "250 never seen"
        return "451 4.3.0 Try again later" if step == "451" else "250 OK"


@pytest.fixture
def scripted_smtp():
    from aiosmtpd.controller import Controller

    servers = []

    def start(script):
        handler = ScriptedSmtp(script)
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        servers.append(controller)
        return handler, controller.port

    yield start
    for controller in servers:
        controller.stop()


def email_outbound(port: int, timeout_s: float = 5.0) -> Outbound:
    outbound = Outbound(POLICY)
    sender = SmtpSender("127.0.0.1", port, "support@shop.test", timeout_s=timeout_s)
    outbound.register("email", ChannelAdapter(sender, make_context=lambda ctx: EmailSendContext(
        to_addr="shopper@example.com", subject="Your order", language=ctx.language)))
    return outbound


def test_smtp_4xx_is_retried_later_and_arrives_once(app_db, scripted_smtp):
    server, port = scripted_smtp(["451", "451", "250"])
    conv_id = make_conversation(channel="email", external="t-1")
    outbound = email_outbound(port)
    asyncio.run(outbound.deliver(conv_id, [OutboundMessage("one"), OutboundMessage("two")]))
    assert attempts(conv_id) == [("queued", 1, True)] * 2  # the whole turn waits, as one email
    assert asyncio.run(outbound.retry_due()) == 0  # not due yet
    assert asyncio.run(outbound.retry_due(later(31))) == 2  # second attempt: 451 again
    assert attempts(conv_id) == [("queued", 2, True)] * 2
    assert asyncio.run(outbound.retry_due(later(31))) == 0  # back-off doubled: 60 s now
    assert asyncio.run(outbound.retry_due(later(61))) == 2
    assert [r[1] for r in rows(conv_id)] == ["sent", "sent"]
    assert asyncio.run(outbound.retry_due(later(10_000))) == 0  # nothing left to send
    accepted = server.received[-1].decode()
    assert len(server.received) == 3 and "one" in accepted and "two" in accepted


def test_smtp_gives_up_after_the_policys_attempts(app_db, scripted_smtp):
    _, port = scripted_smtp(["451"] * 10)
    conv_id = make_conversation(channel="email", external="t-2")
    outbound = email_outbound(port)
    asyncio.run(outbound.deliver(conv_id, [OutboundMessage("x")]))
    asyncio.run(outbound.retry_due(later(31)))
    asyncio.run(outbound.retry_due(later(10_000)))
    assert attempts(conv_id) == [("failed", 3, False)]
    assert "gave up after 3 attempts" in rows(conv_id)[0][3]


def test_smtp_connection_lost_after_the_content_is_unconfirmed_and_never_resent(app_db, scripted_smtp):
    server, port = scripted_smtp(["drop"])
    conv_id = make_conversation(channel="email", external="t-3")
    outbound = email_outbound(port, timeout_s=3)
    asyncio.run(outbound.deliver(conv_id, [OutboundMessage("maybe arrived")]))
    assert attempts(conv_id) == [("unconfirmed", 1, False)]
    assert asyncio.run(outbound.retry_due(later(10_000))) == 0
    assert len(server.received) == 1


def test_smtp_server_down_then_up(app_db, scripted_smtp):
    port = free_port()
    conv_id = make_conversation(channel="email", external="t-4")
    outbound = email_outbound(port)
    asyncio.run(outbound.deliver(conv_id, [OutboundMessage("hello")]))  # nothing listens: temporary
    assert attempts(conv_id) == [("queued", 1, True)]
    from aiosmtpd.controller import Controller

    handler = ScriptedSmtp([])
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert asyncio.run(outbound.retry_due(later(31))) == 1
    finally:
        controller.stop()
    assert attempts(conv_id) == [("sent", 2, False)] and len(handler.received) == 1


# ------------------------------------------------------------------ WhatsApp (fake Graph API over HTTP)


@pytest.fixture
def graph():
    with FakeGraph() as server:
        yield server


def whatsapp_outbound(graph: FakeGraph, http: httpx.AsyncClient) -> Outbound:
    async def no_wait(_):
        return None

    client = GraphClient(graph.base_url, graph.phone_number_id, graph.token, http, max_attempts=2, sleep=no_wait)
    outbound = Outbound(POLICY)
    outbound.register("whatsapp", ChannelAdapter(WhatsAppSender(client), make_context=SendContext.from_delivery))
    return outbound


def test_whatsapp_throttling_beyond_the_inline_attempts_is_retried_later_in_order(app_db, graph):
    conv_id = make_conversation()

    async def scenario():
        async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
            outbound = whatsapp_outbound(graph, http)
            graph.fail_next(2, 130429)  # both in-line attempts of the first message are throttled
            await outbound.deliver(conv_id, [OutboundMessage("first"), OutboundMessage("second")])
            assert attempts(conv_id) == [("queued", 1, True)] * 2  # the second waits behind the first
            assert graph.accepted == []
            assert await outbound.retry_due(later(31)) == 2

    asyncio.run(scenario())
    assert [m["text"]["body"] for m in graph.accepted] == ["first", "second"]
    assert [r[1] for r in rows(conv_id)] == ["sent", "sent"]


def test_whatsapp_send_without_an_answer_is_unconfirmed_and_never_repeated(app_db, graph):
    conv_id = make_conversation()

    async def scenario():
        async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(5, read=0.5)) as http:
            outbound = whatsapp_outbound(graph, http)
            graph.hold_next(1)  # Meta received it and never answered (read timeout)
            await outbound.send(conv_id, [OutboundMessage("agent says hi")])
            graph.release()
            assert await outbound.retry_due(later(10_000)) == 0

    asyncio.run(scenario())
    assert attempts(conv_id) == [("unconfirmed", 1, False)]
    assert len(graph.received) == 1  # one request, no retry


# ------------------------------------------------------------------ what a stopped process left behind


class Counting:
    def __init__(self):
        self.sent: list[str] = []

    async def send(self, recipient_id, messages, ctx):
        await asyncio.sleep(0.05)  # a real send takes a while: concurrent sweeps overlap
        self.sent.extend(m.text for m in messages)
        return [type("Ok", (), {"ok": True, "provider_message_id": f"p-{len(self.sent)}"})() for _ in messages]


def test_recorded_but_never_attempted_is_sent_by_the_sweep_once_even_with_two_processes(app_db):
    """The process recorded an agent's reply and died before sending it: two live processes sweep at once;
    exactly one of them sends it (the claim is a conditional update)."""
    conv_id = make_conversation()
    recorder = Outbound(POLICY)
    recorder.register("whatsapp", ChannelAdapter(Counting()))
    recorder._record(conv_id, [OutboundMessage("agent reply", author="agent")], None, "agent")  # then: crash
    senders = [Counting(), Counting()]
    sweepers = []
    for sender in senders:
        sweeper = Outbound(POLICY)
        sweeper.register("whatsapp", ChannelAdapter(sender))
        sweepers.append(sweeper)
    assert asyncio.run(sweepers[0].retry_due()) == 0  # a live process may still be about to send it

    async def both():
        return await asyncio.gather(*(s.retry_due(later(61)) for s in sweepers))

    assert sorted(asyncio.run(both())) == [0, 1]
    assert senders[0].sent + senders[1].sent == ["agent reply"]
    assert rows(conv_id)[0][1] == "sent"


def test_a_send_interrupted_by_a_crash_becomes_unconfirmed_not_resent(app_db):
    conv_id = make_conversation()
    sender = Counting()
    outbound = Outbound(POLICY)
    outbound.register("whatsapp", ChannelAdapter(sender))
    ids, _ = outbound._record(conv_id, [OutboundMessage("in flight")], None, "agent")
    with unit_of_work() as session:  # claimed, then the process died mid-send
        session.execute(update(Message).where(Message.id.in_(ids)).values(
            delivery_status="sending", status_updated_at=datetime.now(timezone.utc)))
    assert asyncio.run(outbound.retry_due(later(60))) == 0
    assert rows(conv_id)[0][1] == "sending"  # could still be a live process's send
    assert asyncio.run(outbound.retry_due(later(POLICY.stuck_after_s + 1))) == 0
    assert rows(conv_id)[0][1] == "unconfirmed" and sender.sent == []
