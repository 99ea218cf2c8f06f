"""The crossdesk app: channels in front, the shared pipeline behind, plus health and the handoff API."""
from __future__ import annotations

import asyncio
import logging
import os
from contextlib import asynccontextmanager
from types import SimpleNamespace
from datetime import datetime, timezone

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text

from channels.core.inbox import make_inbox
from channels.core.outbound import ChannelAdapter, DeliveryReports, Outbound
from channels.email import api as email_api
from channels.email.smtp import EmailSendContext
from channels.whatsapp import api as whatsapp
from channels.whatsapp.graph import Pacer, SendContext
from channels.core.pipeline import Pipeline
from channels.core.rasa_client import RasaClient
from channels.core.ratelimit import make_rate_limiter
from channels.rest.api import router as rest_router
from channels.web.api import router as web_router
from crm.config import get_settings
from crm.conversations import service as conversations
from crm.db import get_engine, unit_of_work
from crm.handoff import service as handoff
from crm.language.conversation import MachineTranslation

log = logging.getLogger("crossdesk.app")


def _warm_translation(translator: MachineTranslation) -> None:
    try:
        translator.warm()
    except Exception:  # a broken package only disables translation; the pipeline degrades per message
        log.exception("translation models could not be loaded")


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = get_settings()
    rasa = RasaClient(settings.rasa_url)
    app.state.rasa = rasa
    app.state.outbound = Outbound()
    app.state.delivery = DeliveryReports()
    app.state.rate_limiter = make_rate_limiter(settings.redis_url, settings.sender_rate_limit,
                                               settings.sender_rate_window_s)
    notices = make_rate_limiter(settings.redis_url, 1, settings.sender_rate_window_s, prefix="crossdesk:rl-notice")
    translator = MachineTranslation()
    app.state.pipeline = Pipeline(rasa, app.state.outbound, app.state.rate_limiter, notices, translator)
    # Loading the translation models takes seconds: do it beside startup, not in a shopper's first message.
    warming = asyncio.get_running_loop().run_in_executor(None, _warm_translation, translator)
    app.state.inbox = make_inbox(settings.redis_url, app.state.pipeline.handle_inbound)
    whatsapp_http = _register_whatsapp(app)
    email_poller = _start_email(app)
    # CROSSDESK_INBOX_WORKER=0 only accepts (used by the ingestion benchmark to measure the webhook path alone).
    worker = asyncio.create_task(app.state.inbox.run(), name="inbox") \
        if os.environ.get("CROSSDESK_INBOX_WORKER", "1") != "0" else None
    yield
    if worker is not None:
        worker.cancel()
    if whatsapp_http is not None:
        await whatsapp_http.aclose()
    if email_poller is not None:
        email_poller.cancel()
    await rasa.aclose()
    await warming
    await app.state.rate_limiter.aclose()
    if hasattr(app.state.inbox, "aclose"):
        await app.state.inbox.aclose()


def _register_whatsapp(app: FastAPI) -> httpx.AsyncClient | None:
    """Send WhatsApp replies through the Graph API when the channel is configured (WHATSAPP_* variables)."""
    settings = whatsapp.settings_from_env()
    app.state.whatsapp_settings = settings
    if not settings.configured:
        return None
    http = httpx.AsyncClient(timeout=30)
    pacer = Pacer(recipient_interval=float(os.environ.get("WHATSAPP_RECIPIENT_INTERVAL_S", "6")),
                  burst=int(os.environ.get("WHATSAPP_RECIPIENT_BURST", "3")))
    app.state.outbound.register("whatsapp", ChannelAdapter(whatsapp.make_sender(settings, http, pacer=pacer),
                                                           make_context=SendContext.from_delivery))
    return http


def _start_email(app: FastAPI) -> asyncio.Task | None:
    """Reply by SMTP when configured; poll the IMAP mailbox when configured (SMTP_* / IMAP_* variables)."""
    settings = email_api.settings_from_env()
    app.state.email_settings = settings
    if settings.smtp_enabled:
        app.state.outbound.register("email", ChannelAdapter(settings.make_sender(), make_context=lambda ctx: (
            EmailSendContext.from_inbound(SimpleNamespace(metadata=ctx.last_inbound_meta), language=ctx.language))))
    if not settings.imap_enabled:
        return None
    accept = email_api.make_raw_acceptor(app.state.inbox.accept, settings.own_addresses)
    return asyncio.create_task(settings.make_poller().run(accept, settings.imap_interval_s), name="imap")


app = FastAPI(title="crossdesk", version="0.1.0", lifespan=lifespan,
              description="Self-hosted multilingual customer-service bot for cross-border shops.")
app.include_router(rest_router)
app.include_router(whatsapp.router)
app.include_router(email_api.router)
app.include_router(web_router)


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


def _conversation_or_404(session, key: str):
    conv = conversations.find_by_key(session, key)
    if conv is None:
        raise HTTPException(404, "no such conversation")
    return conv


@app.get("/api/conversations/{key}", tags=["agents"], summary="A conversation: channel, customer, mode")
def conversation_detail(key: str):
    with unit_of_work() as session:
        conv = _conversation_or_404(session, key)
        return {"key": conv.key, "channel": conv.channel, "customer_id": conv.customer_id,
                "identity_trusted": conv.identity_trusted, "mode": conv.mode, "language": conv.language,
                "language_reason": conv.language_reason, "translation": conv.translation}


@app.get("/api/conversations/{key}/messages", tags=["agents"], summary="Transcript of a conversation")
def conversation_messages(key: str):
    with unit_of_work() as session:
        conv = _conversation_or_404(session, key)
        return [{"direction": m.direction, "author": m.author, "text": m.text, "payload": m.payload,
                 "created_at": m.created_at.isoformat(), "delivery_status": m.delivery_status,
                 "provider_message_id": m.provider_message_id} for m in conversations.transcript(session, conv)]
