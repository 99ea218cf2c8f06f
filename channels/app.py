"""The crossdesk app: channels in front, the shared pipeline behind, plus health and the handoff API."""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text

from channels.core.inbox import make_inbox
from channels.core.outbound import DeliveryReports, Outbound
from channels.core.pipeline import Pipeline
from channels.core.rasa_client import RasaClient
from channels.core.ratelimit import make_rate_limiter
from channels.rest.api import router as rest_router
from crm.config import get_settings
from crm.conversations import service as conversations
from crm.db import get_engine, unit_of_work
from crm.handoff import service as handoff

log = logging.getLogger("crossdesk.app")


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = get_settings()
    rasa = RasaClient(settings.rasa_url)
    app.state.rasa = rasa
    app.state.outbound = Outbound()
    app.state.delivery = DeliveryReports()
    app.state.pipeline = Pipeline(rasa, app.state.outbound)
    app.state.rate_limiter = make_rate_limiter(settings.redis_url, settings.sender_rate_limit,
                                               settings.sender_rate_window_s)
    app.state.inbox = make_inbox(settings.redis_url, app.state.pipeline.handle_inbound)
    worker = asyncio.create_task(app.state.inbox.run(), name="inbox")
    yield
    worker.cancel()
    await rasa.aclose()
    await app.state.rate_limiter.aclose()
    if hasattr(app.state.inbox, "aclose"):
        await app.state.inbox.aclose()


app = FastAPI(title="crossdesk", version="0.1.0", lifespan=lifespan,
              description="Self-hosted multilingual customer-service bot for cross-border shops.")
app.include_router(rest_router)


@app.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError):
    return JSONResponse({"error": "invalid request", "detail": exc.errors()}, status_code=422)


@app.exception_handler(Exception)
async def _unexpected(request: Request, exc: Exception):  # last resort: log it, never leak a trace
    log.exception("unhandled error on %s", request.url.path)
    return JSONResponse({"error": "internal error; the message was kept and the team is notified"}, status_code=500)


@app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
async def healthz():
    return {"status": "ok"}


@app.get("/readyz", tags=["ops"], summary="Readiness: database and Rasa reachable")
async def readyz(request: Request):
    checks = {"database": False, "rasa": await request.app.state.rasa.ready()}
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:  # reported as not ready, not raised
        log.warning("database not reachable", exc_info=True)
    ready = all(checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


def _handoff_view(req) -> dict:
    return {"id": req.id, "conversation": req.conversation.key, "reason": req.reason, "note": req.note,
            "status": req.status, "created_at": req.created_at.isoformat(),
            "customer_id": req.conversation.customer_id}


@app.get("/api/handoffs", tags=["agents"], summary="Handoff requests (open by default)")
def list_handoffs(status: str | None = "open"):
    with unit_of_work() as session:
        return [_handoff_view(r) for r in handoff.list_requests(session, None if status == "all" else status)]


@app.post("/api/handoffs/{request_id}/close", tags=["agents"], summary="Give the conversation back to the bot")
def close_handoff(request_id: int):
    with unit_of_work() as session:
        req = handoff.close_request(session, request_id, datetime.now(timezone.utc))
        if req is None:
            raise HTTPException(404, "no such handoff request")
        return _handoff_view(req)


@app.get("/api/conversations/{key}/messages", tags=["agents"], summary="Transcript of a conversation")
def conversation_messages(key: str):
    with unit_of_work() as session:
        conv = conversations.find_by_key(session, key)
        if conv is None:
            raise HTTPException(404, "no such conversation")
        return [{"direction": m.direction, "author": m.author, "text": m.text, "payload": m.payload,
                 "created_at": m.created_at.isoformat()} for m in conversations.transcript(session, conv)]
