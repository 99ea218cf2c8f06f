"""Conversations on any channel and their full transcript (inbound and outbound)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import Base, UTCDateTime, utcnow

BOT = "bot"  # the bot answers
HANDOFF = "handoff"  # waiting for / talking to a human; the bot stays silent
INBOUND = "in"
OUTBOUND = "out"


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_conversation_channel_external"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(200))  # sender id on that channel
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    # The customer this conversation is probably about (linked from a channel identity or a verified order).
    # Never proof of ownership by itself: proof is per message (crm.conversations.service.message_trust) or a
    # verification grant.
    language: Mapped[str] = mapped_column(String(8), default="en")
    # Why it speaks that language (crm.i18n.language reasons); None until the first message decides it.
    language_reason: Mapped[str | None] = mapped_column(String(32))
    # None: served natively; "machine": replies machine-translated; "unavailable": language we cannot serve,
    # answered in English and flagged for agents.
    translation: Mapped[str | None] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16), default=BOT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    messages: Mapped[list[Message]] = relationship(back_populates="conversation", order_by="Message.id")

    @property
    def key(self) -> str:
        """The sender id Rasa sees: unique across channels."""
        return f"{self.channel}:{self.external_id}"


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_delivery_status_retry_at", "delivery_status", "retry_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    author: Mapped[str] = mapped_column(String(16))  # shopper | bot | agent | system
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict] = mapped_column(JSON, default=dict)  # buttons, custom, channel metadata
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Outbound delivery as the provider reports it (queued → sent → delivered → read, or failed).
    provider_message_id: Mapped[str | None] = mapped_column(String(200), index=True)
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    delivery_error: Mapped[str | None] = mapped_column(String(500))
    status_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why it was sent (channels.core.outbound: reply, agent, csat, campaign) — the channel's rules (e.g. the
    # WhatsApp template outside the 24-hour window) depend on it, also when it is sent again later.
    purpose: Mapped[str | None] = mapped_column(String(16))
    # Durable retries of temporary failures: attempts so far and when the next one is due (None: not yet
    # attempted, or nothing to retry).
    delivery_attempts: Mapped[int] = mapped_column(default=0)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Exactly once: an outbound reply names the inbound message it answers; an inbound message is marked
    # answered in the same transaction that records its replies, so a retry sends what was recorded and not
    # yet delivered instead of asking the bot again.
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


# Inbound queue item states
PENDING = "pending"
PROCESSING = "processing"
DONE = "done"
FAILED = "failed"


class InboundQueueItem(Base):
    """An accepted inbound message waiting to be processed: stored before the provider gets its 200, so a
    crash or a stopped bot loses nothing; (channel, external_id) is unique, so a provider retry is ignored."""

    __tablename__ = "inbound_queue"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_inbound_queue_channel_external"),
        Index("ix_inbound_queue_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    sender_id: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # retry back-off
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A claim is a lease: the worker holding it renews it while it works; only an expired lease (its process
    # died) or the same worker's own claim after a restart is ever taken back.
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InboxConsumer(Base):
    """Who uses an inbox consumer name now. A stable name (CROSSDESK_INBOX_CONSUMER) lets a restarted process
    take its own claims back at once — so two live processes must never share one: the registration says
    which process instance holds the name and when it last showed it is alive."""

    __tablename__ = "inbox_consumers"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    instance: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid_namespace: Mapped[str] = mapped_column(String(64), default="")
    pid: Mapped[int] = mapped_column(default=0)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
