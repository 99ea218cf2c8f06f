"""Email channel entry points for the app: the Postmark inbound webhook, the raw-mail acceptor for the IMAP
poller, and configuration from the environment.

Both paths go through the same rules (channels.email.mime): parse → skip automated mail → InboundMessage →
``inbox.accept(inbound)``.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
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
from channels.email.imap import ImapPoller
from channels.email.mime import ParsedEmail, is_automated, parse_email, to_inbound
from channels.email.smtp import SmtpSender
from channels.email.threading import join_thread
from crm.config import get_settings
from crm.contacts import normalize_email
from crm.db import unit_of_work
from starlette.concurrency import run_in_threadpool

log = logging.getLogger("crossdesk.email")
router = APIRouter(tags=["channels"])
MAX_BODY_BYTES = 50 * 1024 * 1024  # Postmark allows 35 MB messages; attachments arrive base64-encoded

# --------------------------------------------------------------------------------------------------------------
# Settings


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


@dataclass(frozen=True)
class EmailSettings:
    imap_host: str | None = None
    imap_port: int = 993
    imap_user: str | None = None
    imap_password: str | None = None
    imap_mailbox: str = "INBOX"
    imap_ssl: bool = True
    imap_interval_s: float = 30.0
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_from: str | None = None
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    webhook_user: str | None = None
    webhook_password: str | None = None

    @property
    def imap_enabled(self) -> bool:
        return bool(self.imap_host and self.imap_user)

    @property
    def smtp_enabled(self) -> bool:
        return bool(self.smtp_host and self.smtp_from)

    @property
    def own_addresses(self) -> tuple[str, ...]:
        return tuple(a for a in (self.smtp_from, self.imap_user) if a and "@" in a)

    def make_poller(self) -> ImapPoller:
        if not self.imap_enabled:
            raise ValueError("IMAP_HOST and IMAP_USER must be set to poll a mailbox")
        return ImapPoller(self.imap_host, self.imap_port, self.imap_user, self.imap_password or "",
                          mailbox=self.imap_mailbox, ssl=self.imap_ssl)

    def make_sender(self) -> SmtpSender:
        if not self.smtp_enabled:
            raise ValueError("SMTP_HOST and SMTP_FROM must be set to send email")
        return SmtpSender(self.smtp_host, self.smtp_port, self.smtp_from, username=self.smtp_user,
                          password=self.smtp_password, starttls=self.smtp_starttls, use_ssl=self.smtp_ssl)


def settings_from_env(env: Mapping[str, str] | None = None) -> EmailSettings:
    """IMAP_HOST, IMAP_PORT (993 with IMAP_SSL, else 143), IMAP_USER, IMAP_PASSWORD, IMAP_MAILBOX (INBOX),
    IMAP_SSL (true), IMAP_POLL_INTERVAL (30 s); SMTP_HOST, SMTP_PORT (587; 465 with SMTP_SSL), SMTP_FROM,
    SMTP_USER, SMTP_PASSWORD, SMTP_STARTTLS (true unless SMTP_SSL), SMTP_SSL (false);
    EMAIL_WEBHOOK_USER / EMAIL_WEBHOOK_PASSWORD (HTTP Basic auth for the Postmark webhook)."""
    env = os.environ if env is None else env
    imap_ssl = _flag(env.get("IMAP_SSL"), True)
    smtp_ssl = _flag(env.get("SMTP_SSL"), False)
    smtp_from = (env.get("SMTP_FROM") or "").strip() or None
    if smtp_from and not normalize_email(smtp_from):
        raise ValueError(f"SMTP_FROM is not a valid address: {smtp_from!r}")
    try:
        interval = float(env.get("IMAP_POLL_INTERVAL") or 30)
    except ValueError:
        raise ValueError(f"IMAP_POLL_INTERVAL must be a number of seconds, got {env.get('IMAP_POLL_INTERVAL')!r}") from None
    return EmailSettings(
        imap_host=(env.get("IMAP_HOST") or "").strip() or None,
        imap_port=_int(env, "IMAP_PORT", 993 if imap_ssl else 143),
        imap_user=env.get("IMAP_USER") or None,
        imap_password=env.get("IMAP_PASSWORD") or None,
        imap_mailbox=env.get("IMAP_MAILBOX") or "INBOX",
        imap_ssl=imap_ssl,
        imap_interval_s=interval,
        smtp_host=(env.get("SMTP_HOST") or "").strip() or None,
        smtp_port=_int(env, "SMTP_PORT", 465 if smtp_ssl else 587),
        smtp_from=smtp_from,
        smtp_user=env.get("SMTP_USER") or None,
        smtp_password=env.get("SMTP_PASSWORD") or None,
        smtp_starttls=_flag(env.get("SMTP_STARTTLS"), not smtp_ssl),
        smtp_ssl=smtp_ssl,
        webhook_user=env.get("EMAIL_WEBHOOK_USER") or None,
        webhook_password=env.get("EMAIL_WEBHOOK_PASSWORD") or None,
    )


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
    inbound = to_inbound(parsed, get_settings().email_authserv_id)
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


def _check_basic_auth(request: Request) -> bool:
    """Fails closed: while EMAIL_WEBHOOK_USER / EMAIL_WEBHOOK_PASSWORD are unset, every call is refused."""
    settings = get_settings()
    user = settings.email_webhook_user
    password = settings.email_webhook_password.get_secret_value() if settings.email_webhook_password else None
    if not user or not password:
        return False
    header = request.headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return False
    try:
        given_user, _, given_password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    ok_user = secrets.compare_digest(given_user.encode(), (user or "").encode())
    ok_password = secrets.compare_digest(given_password.encode(), (password or "").encode())
    return ok_user and ok_password


@router.post("/webhooks/email/postmark", summary="Inbound email (Postmark inbound webhook JSON)")
async def postmark_webhook(request: Request) -> Any:
    if not _check_basic_auth(request):
        return _unauthorized()
    body = await read_body(request, MAX_BODY_BYTES)
    if body is None:
        return JSONResponse({"error": f"request body over {MAX_BODY_BYTES} bytes"}, status_code=413)
    try:
        data = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JSONResponse({"error": "body is not valid JSON"}, status_code=400)
    try:
        parsed = await asyncio.to_thread(parse_postmark, data)
    except PostmarkPayloadError as exc:
        return JSONResponse({"error": f"malformed Postmark inbound payload: {exc}"}, status_code=400)
    try:
        own = settings_from_env().own_addresses
    except ValueError:  # misconfigured SMTP/IMAP settings must not break inbound mail
        own = ()
    result = prepare(parsed, own)
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
