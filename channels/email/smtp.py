"""Sending one reply email per bot turn over SMTP (stdlib smtplib, run in a worker thread).

Failures are told apart by how far the conversation with the server got: before the message content was
sent, a connection failure or a 4xx is temporary (`retryable`: the outbound layer tries again later) and a
5xx permanent; once the content went out, a connection that drops before the server's final answer leaves
the email *unconfirmed* — the server may have queued it, so it is not sent again.
"""
from __future__ import annotations

import asyncio
import io
import logging
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.generator import BytesGenerator
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


class _Unconfirmed(Exception):
    """The message content was sent and the server's final answer never came."""


def _flatten(msg) -> bytes:
    """The message as SMTP carries it (CRLF line ends), as smtplib.send_message flattens it."""
    with io.BytesIO() as out:
        BytesGenerator(out, policy=msg.policy.clone(linesep="\r\n")).flatten(msg, linesep="\r\n")
        return out.getvalue()


def _dot_stuffed(content: bytes) -> bytes:
    """RFC 5321 §4.5.2: a line starting with "." gets another; the content ends with CRLF "." CRLF."""
    content = re.sub(rb"(?m)^\.", b"..", content)
    if not content.endswith(b"\r\n"):
        content += b"\r\n"
    return content + b".\r\n"


@dataclass(frozen=True)
class SendResult:
    """Outcome for one OutboundMessage. All messages of a turn travel in the same email (same external_id)."""
    ok: bool
    external_id: str | None = None  # Message-ID of the email that carried the message
    error: str | None = None
    retryable: bool = False  # True: temporary (connection, 4xx) — try again later; False: permanent or success
    unconfirmed: bool = False  # the content was sent but the server's answer never came: may have arrived
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
            _, recipient = parseaddr(str(msg["To"]))
            options = ("SMTPUTF8", "BODY=8BITMIME") if not (envelope_from + recipient).isascii() else ()
            code, reply = client.mail(envelope_from, options)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, envelope_from)
            code, reply = client.rcpt(recipient)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
            client.putcmd("data")
            code, reply = client.getreply()
            if code != 354:
                raise smtplib.SMTPDataError(code, reply)
            try:  # from here on the server may have the message: no answer means "unconfirmed"
                client.send(_dot_stuffed(_flatten(msg)))
                code, reply = client.getreply()
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                raise _Unconfirmed(f"{type(exc).__name__}: {exc}") from exc
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
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
        except _Unconfirmed as exc:
            log.warning("SMTP delivery of %s unconfirmed: %s", message_id, exc)
            return each(SendResult(ok=False, external_id=message_id, unconfirmed=True,
                                   error=f"no answer after the message was sent ({exc}); it may have arrived"))
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
