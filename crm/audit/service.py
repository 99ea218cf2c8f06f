"""Recording and reading the audit trail. Callers write it inside the same unit of work as what they
audit, so an action and its audit row commit (or roll back) together."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.audit.models import AuditEntry
from crm.db import utcnow


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff user (through a console session or an API token), or the command line."""

    user_id: int | None
    name: str
    via: str  # session | token | cli | system
    role: str | None = None
    client: str = ""

    @classmethod
    def cli(cls) -> Actor:
        return cls(None, "cli", "cli", "admin")


def record(session: Session, actor: Actor, action: str, *, customer_id: int | None = None,
           conversation_id: int | None = None, target: str = "", detail: dict | None = None,
           at: datetime | None = None) -> AuditEntry:
    entry = AuditEntry(at=at or utcnow(), actor_id=actor.user_id, actor=actor.name[:254], via=actor.via,
                       action=action, customer_id=customer_id, conversation_id=conversation_id,
                       target=target[:200], detail=detail or {}, client=actor.client[:64])
    session.add(entry)
    return entry


def entries(session: Session, *, customer_id: int | None = None, conversation_id: int | None = None,
            actor_id: int | None = None, action: str | None = None, before_id: int | None = None,
            limit: int = 100) -> list[AuditEntry]:
    """Newest first; `before_id` pages backwards."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 500)))
    if customer_id is not None:
        stmt = stmt.where(AuditEntry.customer_id == customer_id)
    if conversation_id is not None:
        stmt = stmt.where(AuditEntry.conversation_id == conversation_id)
    if actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return list(session.scalars(stmt))
