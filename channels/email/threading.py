"""Which conversation an inbound email belongs to.

An email joins an existing conversation only by a reference the shop issued: the Message-ID of one of our
replies (random, unguessable: channels/email/mime.compose_reply) in its In-Reply-To or References, sent
From the same address that conversation talks to, and not failing DMARC. Anything else — a known From
address, an order number in the subject, a Message-ID the sender made up or copied from its own mail —
starts a new conversation that must verify ownership itself (mime.thread_key).
"""
from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.core.messages import InboundMessage
from channels.email.mime import CHANNEL, parse_msgids
from crm.contacts import normalize_email
from crm.conversations.models import INBOUND, OUTBOUND, Conversation, Message

MAX_REFERENCES_CHECKED = 50


def _references(inbound: InboundMessage) -> list[str]:
    meta = inbound.metadata or {}
    ids = [m for ref in (meta.get("references") or []) for m in parse_msgids(str(ref))]
    ids += parse_msgids(meta.get("in_reply_to"))
    return list(dict.fromkeys(ids))[-MAX_REFERENCES_CHECKED:]


def conversation_address(session: Session, conversation_id: int) -> str | None:
    """The shopper address a conversation talks to: the From of the email that started it."""
    first = session.scalar(select(Message).where(Message.conversation_id == conversation_id,
                                                 Message.direction == INBOUND).order_by(Message.id).limit(1))
    meta = ((first.payload or {}).get("metadata") or {}) if first is not None else {}
    return normalize_email(str(meta.get("from") or ""))


def join_thread(session: Session, inbound: InboundMessage) -> InboundMessage:
    """`inbound` as it arrived (a new thread), or moved into the conversation whose reply it answers."""
    references = _references(inbound)
    sender = normalize_email(str((inbound.metadata or {}).get("from") or ""))
    if not references or not sender or (inbound.metadata or {}).get("dmarc") not in (None, "pass"):
        return inbound
    rows = session.execute(select(Conversation.id, Conversation.external_id).join(Message)
                           .where(Conversation.channel == CHANNEL, Message.direction == OUTBOUND,
                                  Message.provider_message_id.in_(references))
                           .order_by(Message.id.desc()).limit(5)).all()
    for conversation_id, external_id in rows:
        if conversation_address(session, conversation_id) == sender:
            return replace(inbound, sender_id=external_id)
    return inbound
