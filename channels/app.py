"""The crossdesk app: channels in front, the shared pipeline behind; health checks; the staff API (crm/*/views)."""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from types import SimpleNamespace

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text

from channels.core.inbox import make_inbox, supervise
from channels.core.outbound import ChannelAdapter, DeliveryReports, Outbound, RetryPolicy
from channels.email import api as email_api
from channels.email.smtp import EmailSendContext
from channels.whatsapp import api as whatsapp
from channels.whatsapp.graph import SendContext
from channels.core.pipeline import Pipeline
from channels.core.rasa_client import RasaClient
from channels.core.limits import InputLimits
from channels.rest.api import RestReplies, router as rest_router
from channels.web.api import router as web_router
from channels.web.hub import WebHub
from crm.audit.views import router as audit_router
from crm.config import get_settings, require_secrets
from crm.conversations.views import router as conversations_router
from crm.db import get_engine, import_all_models
from crm.handoff.views import router as handoff_router
from crm.staff.views import router as staff_router
from crm.i18n.conversation_language import MachineTranslation

log = logging.getLogger("crossdesk.app")
import_all_models()  # every mapper configured before the first query, whichever feature runs first


def _warm_translation(translator: MachineTranslation) -> None:
    try:
        translator.warm()
    except Exception:  # a broken package only disables translation; the pipeline degrades per message
        log.exception("translation models could not be loaded")


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = get_settings()
    require_secrets(settings)  # no secret key or Rasa token: stop here, saying which variable to set
    rasa = RasaClient(settings.rasa_url, token=settings.secret("rasa_token"))
    app.state.rasa = rasa
    app.state.outbound = Outbound(RetryPolicy(max_attempts=settings.outbound_max_attempts,
                                              base_s=settings.outbound_retry_base_s,
                                              cap_s=settings.outbound_retry_cap_s))
    app.state.web_hub = WebHub(settings.redis_url)
    await app.state.web_hub.start()
    app.state.outbound.register("web", ChannelAdapter(app.state.web_hub, in_process=True))
    app.state.outbound.register("rest", ChannelAdapter(RestReplies(), in_process=True))
    app.state.delivery = DeliveryReports()
    app.state.limits = InputLimits(settings, settings.redis_url)
    translator = MachineTranslation()
    app.state.pipeline = Pipeline(rasa, app.state.outbound, app.state.limits, translator)
    # Loading the translation models takes seconds: do it beside startup, not in a shopper's first message.
    warming = asyncio.get_running_loop().run_in_executor(None, _warm_translation, translator)
    app.state.inbox = make_inbox(settings.redis_url, app.state.pipeline.handle_inbound)
    whatsapp_http = _register_whatsapp(app)
    email_poller = _start_email(app)
    # CROSSDESK_INBOX_WORKER=0 only accepts (used by the ingestion benchmark to measure the webhook path alone).
    worker = asyncio.create_task(supervise(app.state.inbox.run, app.state.inbox), name="inbox") \
        if settings.inbox_worker else None
    app.state.inbox_worker = worker
    retries = asyncio.create_task(supervise(lambda: app.state.outbound.run_retries(settings.outbound_sweep_interval_s),
                                            app.state.outbound, name="outbound retries"), name="outbound-retries")
    app.state.outbound_retries = retries
    yield
    retries.cancel()
    if worker is not None:
        worker.cancel()
    if whatsapp_http is not None:
        await whatsapp_http.aclose()
    if email_poller is not None:
        email_poller.cancel()
    await rasa.aclose()
    await warming
    await app.state.limits.aclose()
    await app.state.web_hub.aclose()
    if hasattr(app.state.inbox, "aclose"):
        await app.state.inbox.aclose()


def _register_whatsapp(app: FastAPI) -> httpx.AsyncClient | None:
    """Send WhatsApp replies through the Graph API when the channel is configured (WHATSAPP_* variables)."""
    settings = get_settings().whatsapp
    app.state.whatsapp_settings = settings
    if not settings.configured:
        return None
    http = httpx.AsyncClient(timeout=30)
    app.state.outbound.register("whatsapp", ChannelAdapter(whatsapp.make_sender(settings, http),
                                                           make_context=SendContext.from_delivery))
    return http


def _start_email(app: FastAPI) -> asyncio.Task | None:
    """Reply by SMTP when configured; poll the IMAP mailbox when configured (SMTP_* / IMAP_* variables)."""
    settings = get_settings().email
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
app.include_router(staff_router)
app.include_router(handoff_router)
app.include_router(conversations_router)
app.include_router(audit_router)


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


def _worker_ready(app_: FastAPI) -> bool:
    """The inbox worker runs (not dead) and its loop comes round (not stuck); off on purpose counts as ready."""
    task = getattr(app_.state, "inbox_worker", None)
    if task is None:
        return True
    if task.done():
        return False
    health = getattr(app_.state.inbox, "health", None)
    return health()["alive"] if health is not None else True


@app.get("/readyz", tags=["ops"], summary="Readiness: database, Rasa and the inbox worker")
async def readyz(request: Request):
    checks = {"database": False, "rasa": await request.app.state.rasa.ready(),
              "inbox_worker": _worker_ready(request.app)}
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:  # reported as not ready, not raised
        log.warning("database not reachable", exc_info=True)
    ready = all(checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)
