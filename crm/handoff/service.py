"""Handing a conversation to a human: the bot pauses until an agent hands it back."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.config import get_settings
from crm.conversations.models import BOT, HANDOFF, Conversation
from crm.handoff.models import CLOSED, OPEN, HandoffRequest


@dataclass(frozen=True)
class HandoffTicket:
    request: HandoffRequest
    expected_wait_minutes: int
    already_open: bool


def expected_wait(session: Session, base_minutes: int | None = None, ahead_of: int | None = None) -> int:
    """Base wait plus a few minutes per request already waiting in the queue (only those ahead of the
    request `ahead_of`, when given)."""
    base = base_minutes if base_minutes is not None else get_settings().handoff_expected_wait_minutes
    stmt = select(func.count(HandoffRequest.id)).where(HandoffRequest.status == OPEN)
    if ahead_of is not None:
        stmt = stmt.where(HandoffRequest.id < ahead_of)
    queued = session.scalar(stmt) or 0
    return base + 3 * queued


def request_handoff(session: Session, conv: Conversation, reason: str, note: str, now: datetime) -> HandoffTicket:
    existing = session.scalar(select(HandoffRequest).where(HandoffRequest.conversation_id == conv.id,
                                                           HandoffRequest.status == OPEN))
    if existing is not None:
        return HandoffTicket(existing, expected_wait(session, ahead_of=existing.id), already_open=True)
    wait = expected_wait(session)
    req = HandoffRequest(conversation_id=conv.id, reason=reason, note=(note or "")[:500], created_at=now)
    session.add(req)
    conv.mode = HANDOFF
    session.flush()
    return HandoffTicket(req, wait, already_open=False)


def list_requests(session: Session, status: str | None = OPEN) -> list[HandoffRequest]:
    stmt = select(HandoffRequest).order_by(HandoffRequest.id)
    if status:
        stmt = stmt.where(HandoffRequest.status == status)
    return list(session.scalars(stmt))


def close_request(session: Session, request_id: int, now: datetime) -> HandoffRequest | None:
    """An agent is done: the bot answers this conversation again."""
    req = session.get(HandoffRequest, request_id)
    if req is None:
        return None
    req.status, req.closed_at = CLOSED, now
    req.conversation.mode = BOT
    return req
