"""REST channel with Rasa's payload: POST {sender, message, metadata} → [{recipient_id, text, buttons?, custom?}]."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from channels.core.http import read_body
from channels.core.limits import TOO_FAST, TOO_LONG
from channels.core.messages import InboundMessage, clean_text
from channels.core.rasa_client import BotUnavailable
from crm.staff.auth import client_address

router = APIRouter(tags=["channels"])
CHANNEL = "rest"


@dataclass(frozen=True)
class RestResult:
    ok: bool
    error: str | None = None


class RestReplies:
    """REST's output adapter. A REST client only hears back in the answer to its own request, which carries
    the turn's replies; a message from outside the turn (an agent, a survey) cannot reach it and is recorded
    as failed — it stays in the transcript."""

    async def send(self, recipient_id: str, messages, ctx) -> list[RestResult]:
        if getattr(ctx, "purpose", "reply") == "reply":
            return [RestResult(True) for _ in messages]
        return [RestResult(False, "the REST channel cannot reach the shopper outside their own request")
                for _ in messages]
MAX_SENDER_CHARS = 200


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@router.post("/webhooks/rest/webhook", summary="Send a shopper message (Rasa REST channel format)")
async def rest_webhook(request: Request) -> Any:
    limits = request.app.state.limits
    body = await read_body(request, limits[CHANNEL].max_body_bytes)
    if body is None:
        return error(413, f"request body over {limits[CHANNEL].max_body_bytes} bytes")
    try:
        data = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return error(400, "body is not valid JSON")
    if not isinstance(data, dict):
        return error(400, 'expected a JSON object {"sender": ..., "message": ...}')
    sender, message, metadata = data.get("sender"), data.get("message"), data.get("metadata") or {}
    if not isinstance(sender, str) or not clean_text(sender):
        return error(400, "'sender' must be a non-empty string")
    if len(sender) > MAX_SENDER_CHARS:
        return error(400, f"'sender' is longer than {MAX_SENDER_CHARS} characters")
    if not isinstance(message, str):
        return error(400, "'message' must be a string")
    if not isinstance(metadata, dict):
        return error(400, "'metadata' must be an object")
    text = clean_text(message)
    if not text:
        return error(400, "'message' is empty")
    inbound = InboundMessage(channel=CHANNEL, sender_id=clean_text(sender), text=text,
                             received_at=datetime.now(timezone.utc), metadata=metadata,
                             client=f"ip:{client_address(request)}")
    refused = await limits.check(CHANNEL, text, f"{CHANNEL}:{inbound.sender_id}", inbound.client)
    if refused == TOO_LONG:
        return error(413, f"'message' is longer than {limits[CHANNEL].max_message_chars} characters; "
                          f"please send a shorter message")
    if refused == TOO_FAST:
        return error(429, "you're sending messages very quickly; please wait a moment and try again")
    try:
        replies = await request.app.state.pipeline.handle_inbound(inbound)
    except BotUnavailable:
        return error(503, "the assistant is temporarily unavailable; your message was saved, please retry shortly")
    out = []
    for reply in replies:
        item: dict[str, Any] = {"recipient_id": sender, "text": reply.text}
        item.update(reply.as_payload())
        out.append(item)
    return out
