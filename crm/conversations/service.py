"""Conversations, transcripts and who the shopper is, shared by every channel."""
from __future__ import annotations

import hashlib
import hmac
import os
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm.contacts import normalize_email, normalize_phone
from crm.conversations.models import INBOUND, OUTBOUND, Conversation, Message
from crm.customers.models import EMAIL, PHONE, CustomerIdentity


def conversation_key(channel: str, external_id: str) -> str:
    """The sender id Rasa and the verification grants use: unique across channels."""
    return f"{channel}:{external_id}"


def split_key(key: str) -> tuple[str, str]:
    channel, _, external_id = key.partition(":")
    return channel, external_id


def get_or_create(session: Session, channel: str, external_id: str, now: datetime) -> Conversation:
    stmt = select(Conversation).where(Conversation.channel == channel, Conversation.external_id == external_id)
    conv = session.scalar(stmt)
    if conv is not None:
        return conv
    try:
        with session.begin_nested():  # another worker may create it at the same moment
            conv = Conversation(channel=channel, external_id=external_id, created_at=now)
            session.add(conv)
    except IntegrityError:
        conv = session.scalar(stmt)
    return conv


def find_by_key(session: Session, key: str) -> Conversation | None:
    channel, external_id = split_key(key)
    return session.scalar(select(Conversation).where(Conversation.channel == channel,
                                                     Conversation.external_id == external_id))


def customer_for_identity(session: Session, kind: str, value: str) -> int | None:
    return session.scalar(select(CustomerIdentity.customer_id).where(CustomerIdentity.kind == kind,
                                                                    CustomerIdentity.value == value))


def identity_signature(kind: str, value: str, secret: str) -> str:
    return hmac.new(secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def trusted_identity(metadata: dict, secret: str | None = None) -> tuple[str, str] | None:
    """An (kind, value) identity the shop vouched for with an HMAC signature.

    A shop embedding crossdesk for logged-in shoppers signs their email/phone with CROSSDESK_IDENTITY_SECRET;
    unsigned claims are ignored, since anyone can type any email into a public endpoint.
    """
    secret = secret if secret is not None else os.environ.get("CROSSDESK_IDENTITY_SECRET")
    ident = metadata.get("identity") if isinstance(metadata, dict) else None
    if not secret or not isinstance(ident, dict):
        return None
    kind, value, sig = ident.get("kind"), ident.get("value"), ident.get("signature")
    if kind not in (EMAIL, PHONE) or not isinstance(value, str) or not isinstance(sig, str):
        return None
    if not hmac.compare_digest(identity_signature(kind, value, secret), sig):
        return None
    normalized = normalize_email(value) if kind == EMAIL else normalize_phone(value)
    return (kind, normalized) if normalized else None


def link_customer(session: Session, conv: Conversation, identity: tuple[str, str] | None,
                  trusted: bool = True) -> None:
    """Attach the conversation to the customer the channel identity belongs to (first match wins)."""
    if identity is None:
        return
    customer_id = customer_for_identity(session, *identity)
    if customer_id is None:
        return
    if conv.customer_id is None:
        conv.customer_id = customer_id
    if trusted and conv.customer_id == customer_id:
        conv.identity_trusted = True


def channel_identity(channel: str, sender_id: str, metadata: dict) -> tuple[tuple[str, str] | None, bool]:
    """(identity, trusted) a channel gives for its sender.

    WhatsApp: the sender phone, signed by Meta's webhook signature — trusted. Email: the From address —
    links the customer but proves nothing (From is easy to forge). REST / web: only a shop-signed identity.
    """
    if channel == "whatsapp":
        phone = normalize_phone(sender_id)
        return ((PHONE, phone), True) if phone else (None, False)
    if channel == "email":
        address = normalize_email(str((metadata or {}).get("from") or ""))
        return ((EMAIL, address), False) if address else (None, False)
    identity = trusted_identity(metadata)
    return (identity, True) if identity else (None, False)


def record(session: Session, conv: Conversation, direction: str, author: str, text: str, payload: dict,
           now: datetime) -> Message:
    msg = Message(conversation=conv, direction=direction, author=author, text=text, payload=payload or {},
                  created_at=now)
    session.add(msg)
    if direction == INBOUND:
        conv.last_inbound_at = now
    return msg


def transcript(session: Session, conv: Conversation, limit: int = 200) -> list[Message]:
    stmt = select(Message).where(Message.conversation_id == conv.id).order_by(Message.id.desc()).limit(limit)
    return list(reversed(session.scalars(stmt).all()))


__all__ = ["INBOUND", "OUTBOUND", "conversation_key", "get_or_create", "find_by_key", "record", "transcript",
           "trusted_identity", "link_customer", "customer_for_identity", "identity_signature", "channel_identity"]
