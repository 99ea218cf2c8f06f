"""Sending on the WhatsApp Cloud API: Graph client with retries, pacing, and the channel's sender.

- `GraphClient.send(payload)` POSTs one message; THROTTLED/TRANSIENT errors (and connections that never
  carried the request) are retried in line with exponential backoff and jitter, PERMANENT ones never;
  OUTSIDE_WINDOW (131047) is returned to the caller. A request that went out but whose answer was lost
  is UNCONFIRMED and never retried: the Cloud API has no idempotency key, so a retry could reach the
  shopper twice. What still fails transiently after the in-line attempts is retried later, durably, by
  the outbound layer (`SendResult.retryable`).
- `Pacer` keeps within Meta's throughput (80 messages/s per business number) and pair rate limit (about one
  message per 6 s to the same user, small bursts tolerated): callers wait, nothing is dropped, and each
  recipient's messages are released in the order they asked.
- `WhatsAppSender.send(recipient_id, messages, ctx)` is what the outbound layer calls: inside the 24-hour
  customer-service window it sends the rendered messages, outside it (or after a 131047) the approved
  template configured for (purpose, language).
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from channels.core.messages import OutboundMessage
from channels.whatsapp.wire import (
    DEFAULT_LIST_BUTTON, ErrorKind, build_payloads, build_template, classify_error, error_details,
)

log = logging.getLogger("crossdesk.whatsapp")
Sleep = Callable[[float], Awaitable[Any]]
Clock = Callable[[], float]
SERVICE_WINDOW = timedelta(hours=24)
NO_TEMPLATE = "outside_window_no_template"

# Label of the button that opens a list message (≤ 20 chars), per language; unknown languages → English.


def _list_button_label(language: str | None) -> str:
    """The list message's button ("Options") in the shopper's language, from the catalog."""
    from crm.i18n.catalog import Texts

    try:
        return Texts((language or "en").split("-")[0].lower())("whatsapp.list_button")
    except Exception:  # a broken catalog must not stop the reply
        return DEFAULT_LIST_BUTTON


@dataclass(frozen=True)
class SendResult:
    ok: bool
    wamid: str | None = None
    error_kind: ErrorKind | None = None
    error_code: int | None = None
    error_title: str | None = None
    attempts: int = 0
    wamids: tuple[str, ...] = ()  # every message id when one normalized message needed several sends
    template: str | None = None  # the template sent instead (outside the 24-hour window)

    @property
    def retryable(self) -> bool:
        """Nothing of this message reached Meta and the failure is temporary: the outbound layer may try
        again later. A message split into several sends of which some went out is not (it would repeat)."""
        return not self.ok and not self.wamids and self.error_kind in (ErrorKind.THROTTLED, ErrorKind.TRANSIENT)

    @property
    def unconfirmed(self) -> bool:
        return self.error_kind is ErrorKind.UNCONFIRMED

    @property
    def provider_message_id(self) -> str | None:
        return self.wamid

    @property
    def error(self) -> str | None:
        return self.error_title


class Pacer:
    """At most `rate` sends per `per` seconds overall, and per recipient a token bucket of `burst` messages
    refilled one per `recipient_interval` seconds. `acquire` waits (never drops); FIFO per recipient."""

    def __init__(self, rate: int = 80, per: float = 1.0, recipient_interval: float = 6.0, burst: int = 1,
                 clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep):
        if rate < 1 or burst < 1 or per <= 0 or recipient_interval < 0:
            raise ValueError("rate and burst must be ≥ 1, per > 0, recipient_interval ≥ 0")
        self.rate, self.per, self.interval, self.burst = rate, per, recipient_interval, burst
        self.clock, self.sleep = clock, sleep
        self._sent: deque[float] = deque()  # times of the last `rate` global grants
        self._global_lock = asyncio.Lock()
        self._tat: dict[str, float] = {}  # per recipient: theoretical arrival time (GCRA)
        self._locks: dict[str, asyncio.Lock] = {}
        self._grants = 0

    async def acquire(self, recipient: str) -> float:
        """Wait for a slot to send to `recipient`; returns the clock time of the grant."""
        lock = self._locks.setdefault(recipient, asyncio.Lock())
        async with lock:  # asyncio.Lock wakes waiters first-in first-out: order per recipient is kept
            while True:
                tat = self._tat.get(recipient)
                earliest = -float("inf") if tat is None else tat - (self.burst - 1) * self.interval
                wait = earliest - self.clock()
                if wait <= 0:
                    break
                await self.sleep(wait)
            granted = await self._acquire_global()
            tat = self._tat.get(recipient)
            self._tat[recipient] = max(granted, tat if tat is not None else granted) + self.interval
        self._grants += 1
        if self._grants % 1000 == 0:
            self._prune()
        return granted

    async def _acquire_global(self) -> float:
        async with self._global_lock:
            while True:
                now = self.clock()
                while self._sent and self._sent[0] <= now - self.per:
                    self._sent.popleft()
                if len(self._sent) < self.rate:
                    self._sent.append(now)
                    return now
                await self.sleep(self._sent[0] + self.per - now)

    def _prune(self) -> None:
        now = self.clock()
        for recipient, tat in list(self._tat.items()):
            lock = self._locks.get(recipient)
            if tat <= now and (lock is None or not lock.locked()):
                self._tat.pop(recipient, None)
                self._locks.pop(recipient, None)


class GraphClient:
    """POST {base_url}/{phone_number_id}/messages with retries; one call per WhatsApp message."""

    def __init__(self, base_url: str, phone_number_id: str, access_token: str, http: httpx.AsyncClient, *,
                 max_attempts: int = 5, base_delay: float = 1.0, max_delay: float = 30.0,
                 sleep: Sleep = asyncio.sleep, rng: Callable[[], float] = random.random,
                 pacer: Pacer | None = None):
        self.url = f"{base_url.rstrip('/')}/{phone_number_id}/messages"
        self.phone_number_id = phone_number_id
        self.headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"}
        self.http = http
        self.max_attempts = max(1, max_attempts)
        self.base_delay, self.max_delay = base_delay, max_delay
        self.sleep, self.rng = sleep, rng
        self.pacer = pacer

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random; a Retry-After header wins if longer."""
        delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        delay = delay / 2 + self.rng() * delay / 2
        if retry_after is not None:
            delay = max(delay, min(self.max_delay, retry_after))
        return delay

    async def send(self, payload: dict[str, Any]) -> SendResult:
        attempt = 0
        while True:
            attempt += 1
            if self.pacer is not None:
                await self.pacer.acquire(str(payload.get("to", "")))
            status, body, retry_after = None, None, None
            try:
                response = await self.http.post(self.url, json=payload, headers=self.headers)
                status = response.status_code
                try:
                    body = response.json()
                except ValueError:
                    body = None
                retry_after = _retry_after(response.headers.get("retry-after"))
            except _NEVER_SENT as exc:  # no connection: the request never left, safe to try again
                log.warning("whatsapp send attempt %d: %s", attempt, exc.__class__.__name__)
                code, title = None, f"network error: {exc.__class__.__name__}"
                kind = ErrorKind.TRANSIENT
            except httpx.HTTPError as exc:  # sent, answer lost (read timeout, reset, protocol error)
                log.warning("whatsapp send unconfirmed after attempt %d: %s", attempt, exc.__class__.__name__)
                return SendResult(False, error_kind=ErrorKind.UNCONFIRMED, attempts=attempt,
                                  error_title=f"no answer from the Graph API ({exc.__class__.__name__}); "
                                              f"the message may or may not have been sent")
            else:
                if 200 <= status < 300:
                    wamid = _wamid(body)
                    if wamid:
                        return SendResult(True, wamid=wamid, attempts=attempt, wamids=(wamid,))
                    return SendResult(False, error_kind=ErrorKind.PERMANENT, error_title="no message id in response",
                                      attempts=attempt)
                code, title = error_details(body)
                title = title or f"HTTP {status}"
                kind = classify_error(status, body)
            retryable = kind in (ErrorKind.THROTTLED, ErrorKind.TRANSIENT)
            if not retryable or attempt >= self.max_attempts:
                if kind is not ErrorKind.OUTSIDE_WINDOW:
                    log.warning("whatsapp send failed (%s, code %s) after %d attempt(s): %s",
                                kind.value, code, attempt, title)
                return SendResult(False, error_kind=kind, error_code=code, error_title=title, attempts=attempt)
            await self.sleep(self.backoff(attempt, retry_after))


# Failures that prove the request was never sent (no connection was made or none was free).
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _wamid(body: Any) -> str | None:
    try:
        wamid = body["messages"][0]["id"]
    except (KeyError, IndexError, TypeError):
        return None
    return wamid if isinstance(wamid, str) and wamid else None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class SendContext:
    last_inbound_at: datetime | None
    language: str
    now: datetime
    purpose: str = "reply"

    @classmethod
    def from_delivery(cls, ctx: Any) -> SendContext:
        """From the outbound layer's DeliveryContext (or anything with last_inbound_at, language, now)."""
        return cls(last_inbound_at=getattr(ctx, "last_inbound_at", None), language=getattr(ctx, "language", "en"),
                   now=getattr(ctx, "now", None) or datetime.now(timezone.utc),
                   purpose=getattr(ctx, "purpose", None) or "reply")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def within_window(ctx: SendContext, window: timedelta = SERVICE_WINDOW) -> bool:
    """The customer-service window: free-form messages only until 24 h after the shopper's last message."""
    if ctx.last_inbound_at is None:
        return False
    return _utc(ctx.now) - _utc(ctx.last_inbound_at) < window


# A message not attempted because an earlier one of the same turn failed temporarily: retried with it.
_DEFERRED = SendResult(False, error_kind=ErrorKind.TRANSIENT, error_title="deferred behind an earlier message")
TemplateRef = tuple  # (name, language code) or (name, language code, components)


@dataclass
class WhatsAppSender:
    client: GraphClient
    templates: dict[tuple[str, str], TemplateRef] = field(default_factory=dict)
    window: timedelta = SERVICE_WINDOW
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict, init=False, repr=False)
    _users: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def template_for(self, purpose: str, language: str) -> TemplateRef | None:
        language = (language or "en").replace("_", "-")
        for lang in dict.fromkeys((language, language.split("-")[0].lower(), "en")):
            ref = self.templates.get((purpose, lang))
            if ref:
                return ref
        return None

    async def send(self, recipient_id: str, messages: list[OutboundMessage], ctx: SendContext) -> list[SendResult]:
        """One SendResult per normalized message (a message split into several sends reports its last wamid;
        all are in `wamids`). Outside the window every message is answered by the one template result."""
        if not messages:
            return []
        lock = self._locks.setdefault(recipient_id, asyncio.Lock())
        self._users[recipient_id] = self._users.get(recipient_id, 0) + 1
        try:
            async with lock:  # concurrent sends to one shopper (bot + agent) must not interleave
                return await self._send_locked(recipient_id, messages, ctx)
        finally:
            self._users[recipient_id] -= 1
            if not self._users[recipient_id]:
                del self._users[recipient_id]
                self._locks.pop(recipient_id, None)

    async def _send_locked(self, recipient_id: str, messages: list[OutboundMessage],
                           ctx: SendContext) -> list[SendResult]:
        if not within_window(ctx, self.window):
            return [await self._send_template(recipient_id, ctx)] * len(messages)
        results: list[SendResult] = []
        label = _list_button_label(ctx.language)
        for index, msg in enumerate(messages):
            result = await self._send_message(recipient_id, msg, label)
            if result.error_kind is ErrorKind.OUTSIDE_WINDOW:  # our clock or Meta's disagree: Meta wins
                template = await self._send_template(recipient_id, ctx)
                results.extend([template] * (len(messages) - index))
                break
            results.append(result)
            if result.retryable:  # keep the order: the rest waits for this one's later retry
                results.extend([_DEFERRED] * (len(messages) - index - 1))
                break
        return results

    async def _send_message(self, recipient_id: str, msg: OutboundMessage, label: str) -> SendResult:
        payloads = build_payloads(recipient_id, msg, list_label=label)
        if not payloads:
            return SendResult(True, attempts=0)  # nothing to say (empty text, no buttons)
        wamids: list[str] = []
        attempts = 0
        for payload in payloads:
            result = await self.client.send(payload)
            attempts += result.attempts
            if not result.ok:  # the rest of this message would not make sense without this part
                return SendResult(False, wamid=wamids[-1] if wamids else None, error_kind=result.error_kind,
                                  error_code=result.error_code, error_title=result.error_title,
                                  attempts=attempts, wamids=tuple(wamids))
            wamids.append(result.wamid)
        return SendResult(True, wamid=wamids[-1], attempts=attempts, wamids=tuple(wamids))

    async def _send_template(self, recipient_id: str, ctx: SendContext) -> SendResult:
        ref = self.template_for(ctx.purpose, ctx.language)
        if ref is None:
            log.warning("whatsapp: outside the 24-hour window and no template for (%s, %s)", ctx.purpose, ctx.language)
            return SendResult(False, error_kind=ErrorKind.PERMANENT, error_title=NO_TEMPLATE)
        name, code, *rest = ref
        payload = build_template(recipient_id, name, code, rest[0] if rest else None)
        result = await self.client.send(payload)
        return SendResult(result.ok, wamid=result.wamid, error_kind=result.error_kind, error_code=result.error_code,
                          error_title=result.error_title, attempts=result.attempts, wamids=result.wamids,
                          template=name)
