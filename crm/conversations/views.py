"""Conversations and transcripts over HTTP, for agents. Every read is audited."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException
from sqlalchemy import select

from crm.audit import service as audit
from crm.conversations import service as conversations
from crm.db import unit_of_work, utcnow
from crm.orders.models import Order
from crm.staff.auth import Principal, require
from crm.staff.models import AGENT
from crm.verification.models import VerifiedOrder

router = APIRouter(tags=["agents"])


def _conversation_or_404(session, key: str):
    conv = conversations.find_by_key(session, key)
    if conv is None:
        raise HTTPException(404, "no such conversation")
    return conv


@router.get("/api/conversations/{key}", summary="A conversation: channel, customer, mode, verified orders")
def conversation_detail(key: str, me: Principal = require(AGENT)):
    with unit_of_work() as session:
        conv = _conversation_or_404(session, key)
        verified = session.scalars(select(Order.number).join(VerifiedOrder, VerifiedOrder.order_id == Order.id)
                                   .where(VerifiedOrder.conversation_key == conv.key,
                                          VerifiedOrder.expires_at > utcnow()).distinct()).all()
        audit.record(session, me.actor, "conversation.read", customer_id=conv.customer_id, conversation_id=conv.id,
                     target=conv.key)
        return {"key": conv.key, "channel": conv.channel, "customer_id": conv.customer_id, "mode": conv.mode,
                "language": conv.language, "language_reason": conv.language_reason, "translation": conv.translation,
                "verified_orders": sorted(verified)}


# Kept for the verification limits (per client), not for people: an agent has no use for a shopper's IP.
_INTERNAL_PAYLOAD = frozenset({"client"})


def _for_staff(payload: dict | None) -> dict:
    return {k: v for k, v in (payload or {}).items() if k not in _INTERNAL_PAYLOAD}


@router.get("/api/conversations/{key}/messages", summary="Transcript of a conversation")
def conversation_messages(key: str, me: Principal = require(AGENT)):
    with unit_of_work() as session:
        conv = _conversation_or_404(session, key)
        messages = conversations.transcript(session, conv)
        audit.record(session, me.actor, "conversation.transcript", customer_id=conv.customer_id,
                     conversation_id=conv.id, target=conv.key, detail={"messages": len(messages)})
        return [{"direction": m.direction, "author": m.author, "text": m.text, "payload": _for_staff(m.payload),
                 "created_at": m.created_at.isoformat(), "delivery_status": m.delivery_status,
                 "provider_message_id": m.provider_message_id} for m in messages]
