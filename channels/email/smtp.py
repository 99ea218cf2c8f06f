"""Sending one reply email per bot turn over SMTP (stdlib smtplib, run in a worker thread)."""
from __future__ import annotations

import asyncio
import logging
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any, Sequence

from channels.core.messages import InboundMessage, OutboundMessage
from channels.email.mime import ParsedEmail, compose_reply
from crm.contacts import normalize_email

log = logging.getLogger("crossdesk.email.smtp")


@dataclass(frozen=True)
class EmailSendContext:
    """What a reply needs besides the messages: where it goes and which email it answers (threading)."""
    to_addr: str
    subject: str = ""
    parent_message_id: str | None = None
    references: tuple[str, ...] = ()
    language: str = "en"

    @classmethod
    def from_parsed(cls, parsed: ParsedEmail, language: str = "en") -> EmailSendContext:
        return cls(to_addr=parsed.from_addr or "", subject=parsed.subject, parent_message_id=parsed.message_id,
                   references=tuple(parsed.references) or ((parsed.in_reply_to,) if parsed.in_reply_to else ()),
                   language=language)

    @classmethod
    def from_inbound(cls, inbound: InboundMessage, language: str = "en") -> EmailSendContext:
        """From the metadata channels.email.mime.to_inbound stores (what the inbox keeps for the thread)."""
        meta = inbound.metadata or {}
        refs = tuple(meta.get("references") or ()) or ((meta["in_reply_to"],) if meta.get("in_reply_to") else ())
        return cls(to_addr=meta.get("from") or "", subject=meta.get("subject") or "",
                   parent_message_id=meta.get("message_id"), references=refs, language=language)


@dataclass(frozen=True)
class SendResult:
    """Outcome for one OutboundMessage. All messages of a turn travel in the same email (same external_id)."""
    ok: bool
    external_id: str | None = None  # Message-ID of the email that carried the message
    error: str | None = None
    retryable: bool = False  # True: temporary (connection, 4xx) — try again later; False: permanent or success
    extra: dict[str, Any] = field(default_factory=dict)


class SmtpSender:
    """Outbound protocol for the email channel: ``await send(thread_key, messages, EmailSendContext)``."""

    channel = "email"

    def __init__(self, host: str, port: int, from_addr: str, username: str | None = None,
                 password: str | None = None, starttls: bool = False, use_ssl: bool = False,
                 timeout_s: float = 30.0):
        self.host, self.port, self.from_addr = host, int(port), from_addr
        self.username, self.password = username, password
        self.starttls, self.use_ssl, self.timeout_s = starttls, use_ssl, timeout_s

    def _deliver(self, msg) -> None:
        context = ssl.create_default_context()
        if self.use_ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        try:
            client.ehlo()
            if self.starttls:
                client.starttls(context=context)
                client.ehlo()
            if self.username:
                client.login(self.username, self.password or "")
            _, envelope_from = parseaddr(self.from_addr)
            client.send_message(msg, from_addr=envelope_from, to_addrs=[str(msg["To"])])
        finally:
            try:
                client.quit()
            except Exception:
                client.close()

    async def send(self, recipient_id: str, messages: Sequence[OutboundMessage],
                   ctx: EmailSendContext) -> list[SendResult]:
        """Send ALL messages of one turn as ONE email; one SendResult per message. Never raises for SMTP trouble."""
        messages = list(messages)
        if not messages:
            return []

        def each(result: SendResult) -> list[SendResult]:
            return [result for _ in messages]

        if not normalize_email(ctx.to_addr or ""):
            return each(SendResult(ok=False, error=f"no valid recipient address for thread {recipient_id}"))
        try:
            msg = compose_reply(ctx, messages, self.from_addr, language=ctx.language or "en")
        except ValueError as exc:
            return each(SendResult(ok=False, error=str(exc)))
        message_id = str(msg["Message-ID"])
        try:
            await asyncio.to_thread(self._deliver, msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            retry = all(400 <= c < 500 for c in codes)
            return each(SendResult(ok=False, external_id=message_id, error=f"recipient refused: {exc.recipients}",
                                   retryable=retry))
        except smtplib.SMTPResponseException as exc:  # includes SMTPDataError, SMTPSenderRefused, auth errors
            retry = 400 <= exc.smtp_code < 500
            return each(SendResult(ok=False, external_id=message_id, retryable=retry,
                                   error=f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"))
        except (smtplib.SMTPException, OSError, socket.timeout) as exc:  # connection trouble: temporary
            log.warning("SMTP delivery to %s:%s failed: %s", self.host, self.port, exc)
            return each(SendResult(ok=False, external_id=message_id, retryable=True, error=f"{type(exc).__name__}: {exc}"))
        log.info("sent %s (%d messages) for %s", message_id, len(messages), recipient_id)
        return each(SendResult(ok=True, external_id=message_id))
