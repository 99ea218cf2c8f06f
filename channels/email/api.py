"""Email channel entry points for the app: the Postmark inbound webhook and the raw-mail acceptor for the IMAP
poller. Their configuration is ``crm.config.EmailSettings`` (``get_settings().email``: IMAP_*, SMTP_*, EMAIL_*).

Both paths go through the same rules (channels.email.mime): parse → skip automated mail → InboundMessage →
``inbox.accept(inbound)``.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from channels.core.http import read_body
from channels.core.messages import InboundMessage
from channels.email.mime import ParsedEmail, is_automated, parse_email, to_inbound
from channels.email.threading import join_thread
from crm.config import EmailSettings, get_settings
from crm.contacts import normalize_email
from crm.db import unit_of_work
from starlette.concurrency import run_in_threadpool

log = logging.getLogger("crossdesk.email")
router = APIRouter(tags=["channels"])

# --------------------------------------------------------------------------------------------------------------
# Shared acceptance rules


@dataclass(frozen=True)
class Acceptance:
    inbound: InboundMessage | None  # None when ignored
    ignored: str | None = None  # reason


def prepare(parsed: ParsedEmail, own_addresses: Iterable[str] = ()) -> Acceptance:
    """The rules both entry points share: automated mail and mail without a usable sender are never answered."""
    reason = is_automated(parsed, own_addresses)
    if reason:
        return Acceptance(None, reason)
    if not parsed.from_addr:
        return Acceptance(None, "no valid sender address")
    inbound = to_inbound(parsed, get_settings().email.authserv_id)
    if not inbound.text:
        return Acceptance(None, "empty message")
    return Acceptance(inbound)


def make_raw_acceptor(inbox_accept: Callable[[InboundMessage], Awaitable[Any]],
                      own_addresses: Iterable[str] = ()) -> Callable[[bytes], Awaitable[Acceptance]]:
    """The ``accept`` callable for ImapPoller: parse, skip automated mail, hand the rest to the inbox.

    Exceptions from ``inbox_accept`` propagate, so the poller leaves the message unseen and retries it.
    """
    own = tuple(own_addresses)

    async def accept(raw: bytes) -> Acceptance:
        result = prepare(await asyncio.to_thread(parse_email, raw, datetime.now(timezone.utc)), own)
        if result.inbound is None:
            log.info("ignored email: %s", result.ignored)
            return result
        result = Acceptance(await run_in_threadpool(_join_thread, result.inbound))
        await inbox_accept(result.inbound)
        return result

    return accept


# --------------------------------------------------------------------------------------------------------------
# Postmark inbound webhook

_SKIP_HEADERS = {"from", "to", "cc", "bcc", "subject", "date", "content-type", "content-transfer-encoding",
                 "mime-version", "content-disposition", "reply-to"}


class PostmarkPayloadError(ValueError):
    pass


def _one_line(value: Any) -> str:
    return re.sub(r"[\r\n\t]+", " ", str(value)).strip()


def _address(full: Any, fallback: Any) -> Address | str:
    if isinstance(full, dict) and isinstance(full.get("Email"), str) and full["Email"].strip():
        email, name = full["Email"].strip(), _one_line(full.get("Name") or "")
    elif isinstance(fallback, str) and fallback.strip():
        return _one_line(fallback)
    else:
        raise PostmarkPayloadError("'From' / 'FromFull.Email' is missing")
    if not normalize_email(email):
        raise PostmarkPayloadError(f"sender address is not valid: {email!r}")
    local, _, domain = email.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def postmark_to_email(data: Any) -> tuple[EmailMessage, list[dict[str, Any]]]:
    """Rebuild the email Postmark parsed (headers + text/html bodies) so the same rules apply to it.

    Returns the message and the attachment metadata (names/types/sizes; contents are never decoded or kept).
    """
    if not isinstance(data, dict):
        raise PostmarkPayloadError("expected a JSON object (Postmark inbound format)")
    headers = data.get("Headers")
    headers = [] if headers is None else headers
    if not isinstance(headers, list) or not all(isinstance(h, dict) for h in headers):
        raise PostmarkPayloadError("'Headers' must be a list of {Name, Value} objects")
    for key in ("Subject", "TextBody", "HtmlBody", "StrippedTextReply", "MessageID", "To"):
        if data.get(key) is not None and not isinstance(data.get(key), str):
            raise PostmarkPayloadError(f"'{key}' must be a string")
    msg = EmailMessage(policy=policy.default)
    try:
        msg["From"] = _address(data.get("FromFull"), data.get("From"))
        if data.get("To"):
            msg["To"] = _one_line(data["To"])
        msg["Subject"] = _one_line(data.get("Subject") or "")
        if data.get("Date"):
            msg["Date"] = _one_line(data["Date"])
        for header in headers:
            name, value = header.get("Name"), header.get("Value")
            if not isinstance(name, str) or not re.fullmatch(r"[!-9;-~]+", name) or value is None:
                continue
            if name.lower() in _SKIP_HEADERS:
                continue
            msg[name] = _one_line(value)
        if "Message-ID" not in msg and data.get("MessageID"):
            # Postmark's own id (not the sender's Message-ID); still unique, so it can start a thread.
            msg["Message-ID"] = f"<{_one_line(data['MessageID'])}@inbound.postmarkapp.com>"
    except PostmarkPayloadError:
        raise
    except Exception as exc:  # header values policy.default cannot represent
        raise PostmarkPayloadError(f"unusable header: {exc}") from None
    text, html = data.get("TextBody") or "", data.get("HtmlBody") or ""
    if text:
        msg.set_content(text)
        if html:
            msg.add_alternative(html, subtype="html")
    elif html:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content("")
    attachments = []
    raw_attachments = data.get("Attachments")
    raw_attachments = [] if raw_attachments is None else raw_attachments
    if not isinstance(raw_attachments, list):
        raise PostmarkPayloadError("'Attachments' must be a list")
    for att in raw_attachments:
        if not isinstance(att, dict):
            raise PostmarkPayloadError("each attachment must be an object")
        size = att.get("ContentLength")
        if not isinstance(size, int):
            content = att.get("Content") or ""
            try:
                size = len(base64.b64decode(content, validate=False)) if isinstance(content, str) else 0
            except (binascii.Error, ValueError):
                size = 0
        attachments.append({"filename": _one_line(att.get("Name") or "")[:200] or None,
                            "content_type": _one_line(att.get("ContentType") or "application/octet-stream"),
                            "size": size})
    return msg, attachments


def parse_postmark(data: Any, received_at: datetime | None = None) -> ParsedEmail:
    msg, attachments = postmark_to_email(data)
    # Round-trip through bytes: exactly what parse_email sees for IMAP mail.
    parsed = parse_email(msg.as_bytes(policy=policy.SMTP), received_at or datetime.now(timezone.utc))
    stripped = data.get("StrippedTextReply") or ""
    if not parsed.reply_text.strip() and stripped.strip():
        parsed = replace(parsed, reply_text=stripped.strip())
    return replace(parsed, attachments=tuple(attachments))


def _unauthorized() -> JSONResponse:
    return JSONResponse({"error": "authentication required"}, status_code=401,
                        headers={"WWW-Authenticate": 'Basic realm="crossdesk email webhook"'})


def _join_thread(inbound: InboundMessage) -> InboundMessage:
    with unit_of_work() as session:
        return join_thread(session, inbound)


def _settings(request: Request) -> EmailSettings:
    settings = getattr(request.app.state, "email_settings", None)
    return settings if isinstance(settings, EmailSettings) else get_settings().email


def _check_basic_auth(request: Request) -> bool:
    """Fails closed: while EMAIL_WEBHOOK_USER / EMAIL_WEBHOOK_PASSWORD are unset, every call is refused."""
    credentials = _settings(request).webhook_credentials
    if credentials is None:
        return False
    user, password = credentials
    header = request.headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return False
    try:
        given_user, _, given_password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    ok_user = secrets.compare_digest(given_user.encode(), user.encode())
    ok_password = secrets.compare_digest(given_password.encode(), password.encode())
    return ok_user and ok_password


@router.post("/webhooks/email/postmark", summary="Inbound email (Postmark inbound webhook JSON)")
async def postmark_webhook(request: Request) -> Any:
    if not _check_basic_auth(request):
        return _unauthorized()
    max_body = request.app.state.limits["email"].max_body_bytes
    body = await read_body(request, max_body)
    if body is None:
        return JSONResponse({"error": f"request body over {max_body} bytes"}, status_code=413)
    try:
        data = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JSONResponse({"error": "body is not valid JSON"}, status_code=400)
    try:
        parsed = await asyncio.to_thread(parse_postmark, data)
    except PostmarkPayloadError as exc:
        return JSONResponse({"error": f"malformed Postmark inbound payload: {exc}"}, status_code=400)
    result = prepare(parsed, _settings(request).own_addresses)
    if result.inbound is None:
        log.info("ignored inbound email from Postmark: %s", result.ignored)
        return {"ignored": result.ignored}
    try:
        result = Acceptance(await run_in_threadpool(_join_thread, result.inbound))
        await request.app.state.inbox.accept(result.inbound)
    except Exception:  # non-2xx makes Postmark retry later; the inbox de-duplicates by external_id
        log.exception("inbox did not accept email %s", result.inbound.external_id)
        return JSONResponse({"error": "message not stored; please retry"}, status_code=503)
    return {"accepted": True, "thread": result.inbound.sender_id, "message_id": result.inbound.external_id}
