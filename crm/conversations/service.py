"""Conversations, transcripts and who the shopper is, shared by every channel."""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm.config import get_settings
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


IDENTITY_VERSION = "v2"


def identity_signature(kind: str, value: str, sender: str, expires: int, secret: str) -> str:
    """HMAC-SHA256 a shop puts on a logged-in shopper's identity. It covers the sender id and an expiry, so
    a signature copied to another sender, or replayed after it expired, proves nothing."""
    message = "\n".join((IDENTITY_VERSION, kind, value, sender, str(int(expires))))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed_identity(kind: str, value: str, sender: str, secret: str, now: datetime,
                    lifetime_s: int = 300) -> dict:
    """The ``metadata.identity`` object for one message (what a shop's server sends along)."""
    expires = int(now.timestamp()) + lifetime_s
    return {"kind": kind, "value": value, "expires": expires,
            "signature": identity_signature(kind, value, sender, expires, secret)}


def trusted_identity(metadata: dict, sender: str, now: datetime, secret: str | None = None,
                     max_lifetime_s: int | None = None) -> tuple[str, str] | None:
    """An (kind, value) identity the shop vouched for on this very message, or None.

    A shop embedding crossdesk for logged-in shoppers signs their email/phone with CROSSDESK_IDENTITY_SECRET
    (``signed_identity``); unsigned, expired, far-future or other-sender claims are ignored, since anyone
    can type any email into a public endpoint.
    """
    settings = get_settings()
    if secret is None:
        secret = settings.identity_secret.get_secret_value() if settings.identity_secret else None
    max_lifetime_s = settings.identity_max_lifetime_s if max_lifetime_s is None else max_lifetime_s
    ident = metadata.get("identity") if isinstance(metadata, dict) else None
    if not secret or not isinstance(ident, dict):
        return None
    kind, value, sig, expires = ident.get("kind"), ident.get("value"), ident.get("signature"), ident.get("expires")
    if kind not in (EMAIL, PHONE) or not isinstance(value, str) or not isinstance(sig, str):
        return None
    if not isinstance(expires, int) or isinstance(expires, bool):
        return None
    now_ts = int(now.timestamp())
    if expires < now_ts or expires > now_ts + max_lifetime_s:
        return None
    if not hmac.compare_digest(identity_signature(kind, value, sender, expires, secret).encode(), sig.encode()):
        return None
    normalized = normalize_email(value) if kind == EMAIL else normalize_phone(value)
    return (kind, normalized) if normalized else None


def link_customer(session: Session, conv: Conversation, identity: tuple[str, str] | None) -> int | None:
    """Attach the conversation to the customer the identity belongs to (first match wins); returns that
    customer's id. Linking says who the conversation is probably about — it is never proof of ownership."""
    if identity is None:
        return None
    customer_id = customer_for_identity(session, *identity)
    if customer_id is not None and conv.customer_id is None:
        conv.customer_id = customer_id
    return customer_id


@dataclass(frozen=True)
class ChannelIdentity:
    """Who the channel says sent one message, and whether that is proof on this message.

    ``trusted`` only for what a third party vouched for on this very message: WhatsApp's sender phone (the
    webhook is signed by Meta) and a shop-signed identity. An email From address is ``linkable`` when the
    receiving server's DMARC check passed (or no verdict was recorded), but it is never proof."""

    identity: tuple[str, str] | None
    trusted: bool = False
    linkable: bool = True


def channel_identity(channel: str, sender_id: str, metadata: dict, now: datetime) -> ChannelIdentity:
    if channel == "whatsapp":
        phone = normalize_phone(sender_id)
        return ChannelIdentity((PHONE, phone), trusted=True) if phone else ChannelIdentity(None)
    if channel == "email":
        meta = metadata or {}
        address = normalize_email(str(meta.get("from") or ""))
        linkable = meta.get("dmarc") in (None, "pass")
        return ChannelIdentity((EMAIL, address), linkable=linkable) if address else ChannelIdentity(None)
    identity = trusted_identity(metadata, sender_id, now)
    return ChannelIdentity(identity, trusted=True) if identity else ChannelIdentity(None)


def message_trust(session: Session, conv: Conversation, ident: ChannelIdentity) -> dict:
    """What the bot may rely on for the message being answered (stored on the inbound row, read by actions):
    the customer a trusted identity belongs to, and a trusted phone."""
    if not ident.trusted or ident.identity is None:
        return {}
    kind, value = ident.identity
    trust = {"source": "whatsapp" if conv.channel == "whatsapp" else "signed_identity",
             "customer_id": customer_for_identity(session, kind, value)}
    if kind == PHONE:
        trust["phone"] = value
    return trust


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
           "trusted_identity", "link_customer", "customer_for_identity", "identity_signature", "signed_identity",
           "channel_identity", "message_trust", "ChannelIdentity", "inbound_message"]


def inbound_message(session: Session, conv: Conversation, message_id: int | None) -> Message | None:
    """The inbound row a bot turn answers — only if it belongs to this conversation."""
    if message_id is None:
        return None
    msg = session.get(Message, message_id)
    return msg if msg is not None and msg.conversation_id == conv.id and msg.direction == INBOUND else None


def find_inbound(session: Session, conv: Conversation, external_id: str | None) -> Message | None:
    """The stored inbound message with this provider id (a provider's retry, a worker's second try)."""
    if external_id is None:
        return None
    return session.scalar(select(Message).where(Message.conversation_id == conv.id, Message.direction == INBOUND,
                                                Message.provider_message_id == external_id).limit(1))


def last_buttons(session: Session, conv: Conversation, before_id: int | None = None) -> list[dict] | None:
    """The options of the last message we sent (what a typed "2" answers)."""
    stmt = select(Message).where(Message.conversation_id == conv.id, Message.direction == OUTBOUND)
    if before_id is not None:
        stmt = stmt.where(Message.id < before_id)
    last = session.scalar(stmt.order_by(Message.id.desc()).limit(1))
    return (last.payload or {}).get("buttons") if last is not None else None
