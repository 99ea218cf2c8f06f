"""Handoff queue over HTTP, for agents (the agent workspace builds on these)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException

from crm.audit import service as audit
from crm.db import unit_of_work, utcnow
from crm.handoff import service as handoff
from crm.staff.auth import Principal, require
from crm.staff.models import AGENT

router = APIRouter(tags=["agents"])


def handoff_view(req) -> dict:
    return {"id": req.id, "conversation": req.conversation.key, "reason": req.reason, "note": req.note,
            "status": req.status, "created_at": req.created_at.isoformat(),
            "customer_id": req.conversation.customer_id}


@router.get("/api/handoffs", summary="Handoff requests (open by default; status=all for every one)")
def list_handoffs(status: str | None = "open", me: Principal = require(AGENT)):
    with unit_of_work() as session:
        requests = handoff.list_requests(session, None if status == "all" else status)
        audit.record(session, me.actor, "handoff.list", target=f"status:{status}", detail={"count": len(requests)})
        return [handoff_view(r) for r in requests]


@router.post("/api/handoffs/{request_id}/close", summary="Give the conversation back to the bot")
def close_handoff(request_id: int, me: Principal = require(AGENT)):
    with unit_of_work() as session:
        req = handoff.close_request(session, request_id, utcnow())
        if req is None:
            raise HTTPException(404, "no such handoff request")
        audit.record(session, me.actor, "handoff.close", customer_id=req.conversation.customer_id,
                     conversation_id=req.conversation_id, target=f"handoff:{req.id}")
        return handoff_view(req)
