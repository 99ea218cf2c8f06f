"""The audit trail over HTTP (admins only)."""
from __future__ import annotations

from fastapi import APIRouter, Query

from crm.audit import service as audit
from crm.db import unit_of_work
from crm.staff.auth import Principal, require
from crm.staff.models import ADMIN

router = APIRouter(tags=["staff"])


@router.get("/api/audit", summary="Audit log, newest first (admins)")
def audit_log(customer_id: int | None = None, conversation_id: int | None = None, actor_id: int | None = None,
              action: str | None = Query(None, max_length=64), before_id: int | None = None,
              limit: int = Query(100, ge=1, le=500), me: Principal = require(ADMIN)):
    with unit_of_work() as session:
        rows = audit.entries(session, customer_id=customer_id, conversation_id=conversation_id, actor_id=actor_id,
                             action=action, before_id=before_id, limit=limit)
        return [{"id": r.id, "at": r.at.isoformat(), "actor_id": r.actor_id, "actor": r.actor, "via": r.via,
                 "action": r.action, "customer_id": r.customer_id, "conversation_id": r.conversation_id,
                 "target": r.target, "detail": r.detail, "client": r.client} for r in rows]
