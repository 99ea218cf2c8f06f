"""Who did or read what, when, about which customer or conversation."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    """Append-only. Ids of the customer and the conversation are plain integers, not foreign keys: the trail
    of a read must outlive what was read."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_customer_time", "customer_id", "at"),
                      Index("ix_audit_actor_time", "actor_id", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column()  # staff user; None for the command line / the system
    actor: Mapped[str] = mapped_column(String(254))  # email at the time, "cli", "system"
    via: Mapped[str] = mapped_column(String(16))  # session | token | cli
    action: Mapped[str] = mapped_column(String(64))  # e.g. conversation.read, handoff.close, user.add
    customer_id: Mapped[int | None] = mapped_column()
    conversation_id: Mapped[int | None] = mapped_column()
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    client: Mapped[str] = mapped_column(String(64), default="")
