"""The outbound layer records every reply, sends through the channel's sender and tracks delivery reports."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone

from channels.core.messages import Button, OutboundMessage
from channels.core.outbound import ChannelAdapter, DeliveryReports, Outbound
from crm.conversations import service as conversations
from crm.conversations.models import INBOUND, Message
from crm.db import unit_of_work


@dataclass
class Result:
    ok: bool
    wamid: str | None = None
    error_code: int | None = None
    error_title: str | None = None


class RecordingSender:
    def __init__(self, results):
        self.calls = []
        self.results = results

    async def send(self, recipient_id, messages, ctx):
        self.calls.append((recipient_id, [m.text for m in messages], ctx))
        return self.results


def make_conversation(channel="whatsapp", external="+4915112345678"):
    now = datetime.now(timezone.utc)
    with unit_of_work() as session:
        conv = conversations.get_or_create(session, channel, external, now)
        conversations.record(session, conv, INBOUND, "shopper", "hi", {"metadata": {"subject": "Order"}}, now)
        session.flush()
        return conv.id


def rows(conv_id):
    with unit_of_work() as session:
        return [(m.text, m.delivery_status, m.provider_message_id, m.delivery_error)
                for m in session.query(Message).filter_by(conversation_id=conv_id, direction="out").order_by(Message.id)]


def test_async_channel_delivery_and_status_reports(app_db):
    conv_id = make_conversation()
    sender = RecordingSender([Result(True, "wamid.1"), Result(False, None, 131026, "undeliverable")])
    outbound = Outbound()
    outbound.register("whatsapp", ChannelAdapter(sender))
    replies = [OutboundMessage("one", (Button("Yes", "/affirm"),)), OutboundMessage("two")]
    asyncio.run(outbound.deliver(conv_id, replies))
    recipient, texts, ctx = sender.calls[0]
    assert recipient == "+4915112345678" and texts == ["one", "two"]
    assert ctx.last_inbound_at is not None and ctx.last_inbound_meta == {"subject": "Order"}
    assert rows(conv_id) == [("one", "sent", "wamid.1", None), ("two", "failed", None, "131026: undeliverable")]

    reports = DeliveryReports()
    assert asyncio.run(reports.record_status("whatsapp", "wamid.1", "read")) is True
    assert asyncio.run(reports.record_status("whatsapp", "wamid.1", "delivered")) is True  # late, out of order
    assert rows(conv_id)[0][1] == "read"
    assert asyncio.run(reports.record_status("whatsapp", "wamid.unknown", "read")) is False


def test_synchronous_channel_rows_are_sent_at_once(app_db):
    conv_id = make_conversation(channel="rest", external="someone")
    asyncio.run(Outbound().deliver(conv_id, [OutboundMessage("hello")]))
    assert rows(conv_id) == [("hello", "sent", None, None)]


def test_a_crashing_sender_is_recorded_as_failed(app_db):
    class Broken:
        async def send(self, *args):
            raise RuntimeError("provider exploded")

    conv_id = make_conversation()
    outbound = Outbound()
    outbound.register("whatsapp", ChannelAdapter(Broken()))
    asyncio.run(outbound.deliver(conv_id, [OutboundMessage("x")]))
    assert rows(conv_id)[0][1] == "failed" and "exploded" in rows(conv_id)[0][3]
