"""WhatsApp Cloud API webhook: GET = Meta's subscription handshake, POST = signed notifications.

POST: raw body (≤ 1 MiB) → X-Hub-Signature-256 check (nothing unsigned is processed) → JSON → parse →
`app.state.inbox.accept(msg)` for each message and `app.state.delivery.record_status(...)` for each status →
200 at once (Meta retries anything else). The bot runs later, from the inbox; replies leave through the
outbound layer and `WhatsAppSender` (channels/whatsapp/graph.py).
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from channels.core.http import read_body
from channels.whatsapp.graph import GraphClient, Pacer, WhatsAppSender
from channels.whatsapp.wire import CHANNEL, parse_webhook, verify_handshake, verify_signature
from crm.config import WhatsAppSettings, get_settings

log = logging.getLogger("crossdesk.whatsapp")
router = APIRouter(tags=["channels"])


def make_sender(settings: WhatsAppSettings, http: httpx.AsyncClient, pacer: Pacer | None = None,
                **client_options: Any) -> WhatsAppSender:
    """The sender the outbound layer registers for channel "whatsapp" (the caller owns `http`); paced per
    recipient as the settings say unless a `pacer` is given."""
    if pacer is None:
        pacer = Pacer(recipient_interval=settings.recipient_interval_s, burst=settings.recipient_burst)
    client = GraphClient(settings.graph_url, settings.phone_number_id, settings.access_token, http,
                         pacer=pacer, **client_options)
    return WhatsAppSender(client, templates=dict(settings.templates))


def _settings(request: Request) -> WhatsAppSettings:
    settings = getattr(request.app.state, "whatsapp_settings", None)
    return settings if isinstance(settings, WhatsAppSettings) else get_settings().whatsapp


def _remote(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/webhooks/whatsapp", summary="Meta's webhook verification handshake",
            response_class=PlainTextResponse)
async def whatsapp_handshake(request: Request):
    challenge = verify_handshake(dict(request.query_params), _settings(request).verify_token)
    if challenge is None:
        log.warning("whatsapp handshake refused from %s", _remote(request))
        return PlainTextResponse("forbidden", status_code=403)
    return PlainTextResponse(challenge, status_code=200)


@router.post("/webhooks/whatsapp", summary="WhatsApp Cloud API notifications (messages, statuses)")
async def whatsapp_webhook(request: Request):
    max_body = request.app.state.limits["whatsapp"].max_body_bytes
    body = await read_body(request, max_body)
    if body is None:
        return JSONResponse({"error": f"request body over {max_body} bytes"}, status_code=413)
    settings = _settings(request)
    if not settings.app_secret:
        log.error("WHATSAPP_APP_SECRET is not set: refusing WhatsApp webhooks from %s", _remote(request))
    if not verify_signature(body, request.headers.get("x-hub-signature-256"), settings.app_secret):
        log.warning("whatsapp webhook with a missing or invalid signature from %s", _remote(request))
        return JSONResponse({"error": "invalid signature"}, status_code=401)
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JSONResponse({"error": "body is not valid JSON"}, status_code=400)
    if not isinstance(payload, dict):
        return JSONResponse({"error": "expected a JSON object"}, status_code=400)
    batch = parse_webhook(payload, datetime.now(timezone.utc))
    if batch.skipped:
        log.warning("whatsapp webhook: skipped %d malformed item(s): %s", batch.skipped,
                    "; ".join(batch.skipped_reasons[:5]))
    for error in batch.errors:
        log.warning("whatsapp reported an error: %s %s", error.get("code"), error.get("title"))
    accepted = 0
    for msg in batch.messages:
        # A failure here must reach Meta as non-200 so it redelivers; the inbox drops repeated wamids.
        try:
            if await request.app.state.inbox.accept(msg) is not False:
                accepted += 1
        except Exception:
            log.exception("whatsapp: inbox refused message %s", msg.external_id)
            return JSONResponse({"error": "could not store the message; retry later"}, status_code=500)
    for status in batch.statuses:
        try:
            await request.app.state.delivery.record_status(
                channel=CHANNEL, provider_message_id=status.wamid, status=status.status, at=status.timestamp,
                errors=[dict(e) for e in status.errors])
        except Exception:  # a lost status report is not worth Meta re-sending the whole batch forever
            log.exception("whatsapp: could not record status %s for %s", status.status, status.wamid)
    return JSONResponse({"messages": len(batch.messages), "accepted": accepted, "statuses": len(batch.statuses),
                         "skipped": batch.skipped})
