"""Which conversation an email joins: only through a Message-ID we issued, from the same address, not
failing DMARC (channels/email/threading.py) — on SQLite and PostgreSQL."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from channels.core.messages import OutboundMessage
from channels.email.mime import compose_reply, parse_email, to_inbound
from channels.email.threading import join_thread
from crm.conversations import service as conversations
from crm.conversations.models import INBOUND, OUTBOUND

NOW = datetime(2026, 3, 5, 10, tzinfo=timezone.utc)


def mail(sender: str, msgid: str, subject: str = "Order CD-100001", headers: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: support@shop.test\r\nSubject: {subject}\r\nMessage-ID: {msgid}\r\n{headers}"
            f"\r\nhello\r\n").encode()


@pytest.fixture
def thread(session):
    """Anna's first email, its conversation, and our reply with the Message-ID we issued."""
    first = parse_email(mail("anna@example.com", "<a1@example.com>"), NOW)
    inbound = to_inbound(first)
    conv = conversations.get_or_create(session, "email", inbound.sender_id, NOW)
    conversations.record(session, conv, INBOUND, "shopper", inbound.text, {"metadata": inbound.metadata}, NOW)
    reply = compose_reply(first, [OutboundMessage("Which email is on the order?")], "support@shop.test", now=NOW)
    ours = conversations.record(session, conv, OUTBOUND, "bot", "Which email is on the order?", {}, NOW)
    ours.provider_message_id = str(reply["Message-ID"])
    session.commit()
    return conv, str(reply["Message-ID"])


def _inbound(sender: str, msgid: str, headers: str = "", dmarc: str | None = None):
    inbound = to_inbound(parse_email(mail(sender, msgid, "Re: Order CD-100001", headers), NOW))
    return replace(inbound, metadata={**inbound.metadata, "dmarc": dmarc}) if dmarc else inbound


def test_a_reply_to_our_message_id_joins_the_conversation(session, thread):
    conv, ours = thread
    reply = _inbound("Anna <ANNA@example.com>", "<a2@example.com>", f"In-Reply-To: {ours}\r\nReferences: {ours}\r\n")
    assert join_thread(session, reply).sender_id == conv.external_id
    only_refs = _inbound("anna@example.com", "<a3@example.com>", f"References: <a1@example.com> {ours}\r\n")
    assert join_thread(session, only_refs).sender_id == conv.external_id
    passed = _inbound("anna@example.com", "<a4@example.com>", f"In-Reply-To: {ours}\r\n", dmarc="pass")
    assert join_thread(session, passed).sender_id == conv.external_id


@pytest.mark.parametrize("sender, headers, dmarc", [
    # the forged-From attack: the victim's address and the order number, but no reference we issued
    ("anna@example.com", "", None),
    ("anna@example.com", "In-Reply-To: <a1@example.com>\r\nReferences: <a1@example.com>\r\n", None),
    ("anna@example.com", "In-Reply-To: <cd.guessed@shop.test>\r\n", None),
    # our reference, but another address (someone the victim forwarded it to, or who saw it)
    ("eve@attacker.test", "In-Reply-To: {ours}\r\n", None),
    # our reference and the victim's From, but the receiving server says DMARC failed: forged
    ("anna@example.com", "In-Reply-To: {ours}\r\n", "fail"),
    ("anna@example.com", "In-Reply-To: {ours}\r\n", "none"),
])
def test_anything_else_starts_a_new_conversation(session, thread, sender, headers, dmarc):
    conv, ours = thread
    inbound = _inbound(sender, "<x9@attacker.test>", headers.replace("{ours}", ours), dmarc)
    joined = join_thread(session, inbound)
    assert joined.sender_id == inbound.sender_id != conv.external_id
