"""Web chat channel: a full-page chat, a one-line embed script for shops, and the WebSocket behind both.

Embedding on a shop's site — one line, no build step, nothing from a CDN::

    <script src="https://shop-support.example/widget.js" data-crossdesk async></script>

``/widget.js`` finds its own ``<script>`` tag, takes the app's origin from its ``src`` and adds a launcher
button (in a shadow root, so the shop's CSS cannot touch it) that opens an ``<iframe>`` on ``/chat?embed=1``.
The chat therefore always runs on the app's origin: the shop page never sees the conversation, and the
chat's close button talks to the launcher only through ``postMessage`` (origin-checked on both sides).
Optional attributes on the tag: ``data-label="Chat with us"`` (launcher text), ``data-position="left"``,
``data-locale="es"`` (else the page's ``<html lang>``, else the browser's language): the launcher, the chat's
interface strings (``ui:`` in crm/i18n/locales/<lang>.yml) and the first guess of the shopper's language.

Routes
- ``GET /chat`` — the chat page; ``GET /widget.js`` — the embed script; ``GET /web/static/<file>`` — its
  assets (channels/web/static/, plain HTML/CSS/JS).
- ``WS /ws/chat?session=<id>`` — JSON frames. Client → ``{"type":"hello","locale":"de-DE"}``,
  ``{"type":"message","text":"...","client_id":"<uuid>"}``, ``{"type":"button","payload":"/track",
  "title":"Track my order"}``. Server → ``{"type":"ack","client_id":...}`` once a message is accepted,
  ``{"type":"typing"}`` while the bot works, ``{"type":"message","author":"bot","text":...,"buttons":[...],
  "ts":"<ISO 8601 UTC>"}`` per message to the session — the bot's replies, and any message sent to the
  conversation from outside the shopper's turn (an agent, a survey), pushed to every open tab of the session
  (channels/web/hub.py), ``{"type":"error","message":...}`` (the socket stays open after a bad
  frame; only an invalid session id closes it, code 1008).
- ``GET /api/web/{session}/history`` — the transcript, so the widget shows the conversation again on load.

Session ids and who can read what
The session id is created in the browser (``crypto.getRandomValues``, 128 bits, base64url) and kept in the
app origin's localStorage, so a reload or reconnect continues the same conversation (Rasa sender and CRM key
``web:<session>``). It is the only credential of an anonymous web visitor — a bearer secret like a
password-reset link: whoever holds it can read that transcript and continue that conversation, including
an order verification already granted to it. Guessing one is hopeless (2^128 possibilities, and ids must
match ``^[A-Za-z0-9_-]{16,64}$``); the history endpoint only ever reads ``web:`` conversations, answers an
unknown id exactly like an empty one, and sends ``Cache-Control: no-store``. Do not log query strings in a
reverse proxy in front of ``/ws/chat`` if those logs are widely readable. No cookies are involved, so a
foreign page opening the WebSocket gains nothing without the id.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect
from jinja2 import Environment
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from channels.core.limits import TOO_FAST, TOO_LONG
from channels.core.messages import InboundMessage, clean_text
from channels.core.rasa_client import BotUnavailable
from crm.staff.auth import client_address
from crm.conversations import service as conversations
from crm.conversations.models import INBOUND
from crm.db import unit_of_work

router = APIRouter(tags=["web chat"])

STATIC = Path(__file__).parent / "static"
SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MAX_TITLE_CHARS = 200
CHANNEL = "web"

# The chat page runs only its own files; inline script/markup injected anywhere would not execute.
# frame-ancestors * lets any shop embed the widget's iframe.
CHAT_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; object-src 'none'; frame-ancestors *")
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}


def _static(name: str, **headers: str) -> FileResponse:
    path = STATIC / name
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix],
                        headers={"X-Content-Type-Options": "nosniff", **headers})


RTL_LANGUAGES = frozenset({"ar", "he", "fa", "ur"})
_page = Environment(autoescape=True).from_string((STATIC / "chat.html").read_text(encoding="utf-8"))


def ui_language(locale: str | None, accept_language: str | None) -> str:
    """The widget's interface language: the shop's ?locale= first, then the browser's Accept-Language."""
    from crm.i18n.conversation_language import parse_accept_language, shop_languages

    served = shop_languages()
    for source in (locale if locale and LOCALE_RE.fullmatch(locale) else None, accept_language):
        found = parse_accept_language(source, served)
        if found:
            return found[0]
    return "en"


def ui_strings(language: str) -> dict[str, str]:
    from crm.i18n.catalog import Texts

    return dict(Texts(language).raw("ui"))


@router.get("/chat", summary="Full-page web chat (interface in ?locale= or the browser's language)",
            include_in_schema=True)
async def chat_page(request: Request, locale: str | None = None) -> Response:
    language = ui_language(locale, request.headers.get("accept-language"))
    strings = ui_strings(language)
    html = _page.render(lang=language, dir="rtl" if language in RTL_LANGUAGES else "ltr", ui=strings,
                        ui_json=json.dumps(strings, ensure_ascii=False))
    return Response(html, media_type=STATIC_TYPES[".html"], headers={
        "Content-Security-Policy": CHAT_CSP, "Cache-Control": "no-cache", "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff", "Content-Language": language, "Vary": "Accept-Language"})


@lru_cache(maxsize=8)
def _widget_script(languages: tuple[str, ...]) -> str:
    """widget.js with the launcher's label and the iframe's title of every served catalog (built once)."""
    labels = {lang: {key: ui_strings(lang)[key] for key in ("launcher", "title")} for lang in languages}
    return (STATIC / "widget.js").read_text(encoding="utf-8").replace(
        "/*LABELS*/{}", json.dumps(labels, ensure_ascii=False))


@router.get("/widget.js", summary="Embed script for a shop's site (see module docs)")
async def widget_js() -> Response:
    # The script picks the shop page's language from the labels it carries.
    from crm.i18n.conversation_language import shop_languages

    script = _widget_script(shop_languages())
    return Response(script, media_type=STATIC_TYPES[".js"], headers={
        "Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*", "X-Content-Type-Options": "nosniff"})


@router.get("/web/static/{name}", summary="Web chat assets", include_in_schema=False)
async def static_asset(name: str) -> FileResponse:
    # Only plain file names directly in static/ — never a path.
    if "/" in name or "\\" in name or name.startswith(".") or Path(name).suffix not in STATIC_TYPES:
        raise HTTPException(404, "not found")
    if not (STATIC / name).is_file():
        raise HTTPException(404, "not found")
    return _static(name, **{"Cache-Control": "no-cache"})


def valid_session(session: str | None) -> bool:
    return isinstance(session, str) and SESSION_RE.fullmatch(session) is not None


def _history(session: str) -> list[dict[str, Any]]:
    with unit_of_work() as db:
        conv = conversations.find_by_key(db, conversations.conversation_key(CHANNEL, session))
        if conv is None:
            return []
        out = []
        for m in conversations.transcript(db, conv):
            payload = m.payload or {}
            if m.direction == INBOUND:
                title = (payload.get("metadata") or {}).get("button_title")
                out.append({"author": "shopper", "text": title or m.text, "ts": _iso(m.created_at)})
            else:
                out.append({"author": m.author, "text": m.text, "buttons": payload.get("buttons") or [],
                            "ts": _iso(m.created_at)})
        return out


@router.get("/api/web/{session}/history", summary="Transcript of a web chat session (for the widget)")
async def history(session: str) -> Response:
    if not valid_session(session):
        raise HTTPException(400, "invalid session id")
    messages = await run_in_threadpool(_history, session)
    return Response(json.dumps({"messages": messages}), media_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _iso(ts: datetime) -> str:
    if ts.tzinfo is None:  # SQLite hands back naive UTC
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc).isoformat()


class _Conversation:
    """One open socket: validates frames and passes accepted messages to the pipeline."""

    def __init__(self, ws: WebSocket, session: str):
        self.ws, self.session, self.locale = ws, session, None
        self.client = client_address(ws)
        self.accept_language = (ws.headers.get("accept-language") or "")[:200] or None

    async def error(self, message: str, **extra: Any) -> None:
        await self.ws.send_json({"type": "error", "message": message, **extra})

    async def frame(self, raw: str) -> None:
        frame_limit = self.ws.app.state.limits[CHANNEL].max_body_bytes
        if len(raw) > frame_limit:
            return await self.error(f"frame over {frame_limit} characters")
        try:
            data = json.loads(raw)
        except ValueError:
            return await self.error("frame is not valid JSON")
        if not isinstance(data, dict):
            return await self.error('expected a JSON object like {"type": "message", "text": "..."}')
        kind = data.get("type")
        if kind == "hello":
            locale = data.get("locale")
            if isinstance(locale, str) and LOCALE_RE.fullmatch(locale):
                self.locale = locale
            return None
        if kind == "message":
            return await self.message(data.get("text"), data.get("client_id"), None)
        if kind == "button":
            title = data.get("title")
            title = clean_text(title)[:MAX_TITLE_CHARS] if isinstance(title, str) else None
            return await self.message(data.get("payload"), data.get("client_id"), title or None)
        return await self.error("unknown frame type; expected hello, message or button")

    async def message(self, text: Any, client_id: Any, button_title: str | None) -> None:
        client_id = client_id if isinstance(client_id, str) and CLIENT_ID_RE.fullmatch(client_id) else None
        ref = {"client_id": client_id} if client_id else {}
        if not isinstance(text, str):
            return await self.error("'text' must be a string", **ref)
        text = clean_text(text)
        if not text:
            return await self.error("the message is empty", **ref)
        limits = self.ws.app.state.limits
        refused = await limits.check(CHANNEL, text, f"{CHANNEL}:{self.session}", f"ip:{self.client}")
        if refused == TOO_LONG:
            return await self.error(f"the message is longer than {limits[CHANNEL].max_message_chars} characters; "
                                    f"please send a shorter message", **ref)
        if refused == TOO_FAST:
            return await self.error("you're sending messages very quickly; please wait a moment and try again", **ref)
        metadata: dict[str, Any] = {"locale": self.locale}
        if self.accept_language:
            metadata["accept_language"] = self.accept_language
        if button_title:
            metadata["button_title"] = button_title
        inbound = InboundMessage(channel=CHANNEL, sender_id=self.session, text=text,
                                 received_at=datetime.now(timezone.utc), metadata=metadata, external_id=client_id,
                                 client=f"ip:{self.client}")
        if client_id:
            await self.ws.send_json({"type": "ack", "client_id": client_id})
        await self.ws.send_json({"type": "typing"})
        try:
            # The replies reach this socket (and the session's other tabs) through the outbound layer's web
            # adapter (channels/web/hub.py), like an agent's reply or any other message to this session.
            await self.ws.app.state.pipeline.handle_inbound(inbound)
        except BotUnavailable:
            return await self.error("the assistant is temporarily unavailable; your message was saved, "
                                    "please retry shortly", **ref)


@router.websocket("/ws/chat")
async def chat_socket(ws: WebSocket, session: str | None = None) -> None:
    await ws.accept()
    if not valid_session(session):
        await ws.send_json({"type": "error", "message": "invalid session id"})
        await ws.close(code=1008)
        return
    conv = _Conversation(ws, session)
    hub = ws.app.state.web_hub
    hub.attach(session, ws)
    try:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            raw = msg.get("text")
            if raw is None:
                await conv.error("send text frames with JSON")
                continue
            await conv.frame(raw)
    except WebSocketDisconnect:
        return
    finally:
        hub.detach(session, ws)
