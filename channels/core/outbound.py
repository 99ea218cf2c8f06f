"""The one way anything leaves crossdesk: bot replies, agent replies, CSAT questions, campaign messages.

Every channel registers an output adapter (OutboundMessage → wire → a result per message). Every outbound
message is first written to the transcript, then handed to the adapter; the provider's answer and later
delivery reports (sent → delivered → read, or failed) are recorded on the same row. In-process adapters
(the web chat's socket push, REST's answer to the request) are recorded as sent at once.

Two entry points: `deliver` answers a shopper's turn (the reply names the inbound message, which is marked
answered in the same transaction), `send` reaches a conversation from outside any turn — an agent's reply,
a survey, a campaign step — honouring the channel's rules for that `purpose` (e.g. WhatsApp's 24-hour
window: outside it, the approved template for the purpose and language).

At most once, never lost: a row is *claimed* (queued → sending, a conditional update) before its send, so
two paths that find the same queued row (a retried turn, the retry sweep) cannot both send it. A
temporary failure goes back to queued with a `retry_at` (doubling back-off, a maximum of attempts, then
failed); `retry_due` — run periodically by `run_retries` — sends what is due, and also what was recorded
but never attempted because the process stopped in between. A row found still `sending` long after its
claim was interrupted mid-send: it becomes `unconfirmed` and is never sent again.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from itertools import groupby
from typing import Any

from sqlalchemy import and_, or_, select, update
from starlette.concurrency import run_in_threadpool

from channels.core.messages import OutboundMessage
from crm.conversations import service as conversations
from crm.conversations.models import INBOUND, OUTBOUND, Conversation, Message
from crm.db import unit_of_work

log = logging.getLogger("crossdesk.outbound")
QUEUED, SENDING, SENT, DELIVERED, READ, FAILED = "queued", "sending", "sent", "delivered", "read", "failed"
# A send that was under way when the process died: the provider may or may not have it. Never sent again
# (a shopper must not get an answer twice); shown to agents as unconfirmed.
UNCONFIRMED = "unconfirmed"
_RANK = {QUEUED: 0, SENDING: 0, UNCONFIRMED: 0, SENT: 1, DELIVERED: 2, READ: 3}
REPLY, AGENT, CSAT, CAMPAIGN = "reply", "agent", "csat", "campaign"  # why a message is sent (purpose)


@dataclass(frozen=True)
class RetryPolicy:
    """When a temporarily failed message is tried again: base × 2^(attempt-1), capped, up to max_attempts."""

    max_attempts: int = 8
    base_s: float = 30.0
    cap_s: float = 3600.0
    # A row recorded but not claimed for this long was left by a process that stopped before sending it.
    orphan_after_s: float = 60.0
    # A row still `sending` this long after its claim: the process died mid-send (longer than any in-line
    # retry sequence or pacing wait).
    stuck_after_s: float = 1800.0

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class DeliveryContext:
    """What a channel sender may need to address a reply (24-hour window, thread headers, language)."""

    conversation_key: str
    channel: str
    recipient_id: str
    language: str
    last_inbound_at: datetime | None
    last_inbound_meta: dict[str, Any]
    now: datetime
    purpose: str = REPLY


@dataclass
class ChannelAdapter:
    """A channel's sender plus how to turn the generic context into the one it expects."""

    sender: Any  # async send(recipient_id, messages, ctx) -> list[result]
    make_context: Callable[[DeliveryContext], Any] = field(default=lambda ctx: ctx)
    # Delivery happens in this process and cannot be half done by a crash (a socket push, the answer to an
    # HTTP request): recorded as sent with the message, no status round trips.
    in_process: bool = False


def _status_after(result: Any) -> str:
    """sent, unconfirmed (sent, answer lost), queued (temporary: retry) or failed."""
    if getattr(result, "ok", True):
        return SENT
    if getattr(result, "unconfirmed", False):
        return UNCONFIRMED
    return QUEUED if getattr(result, "retryable", False) else FAILED


def _result_fields(result: Any) -> tuple[bool, str | None, str | None]:
    ok = bool(getattr(result, "ok", True))
    provider_id = getattr(result, "provider_message_id", None) or getattr(result, "wamid", None) or \
        getattr(result, "message_id", None) or getattr(result, "external_id", None)
    error = getattr(result, "error", None) or getattr(result, "error_title", None)
    code = getattr(result, "error_code", None)
    if not ok and code:
        error = f"{code}: {error}" if error else str(code)
    return ok, provider_id, error


class Outbound:
    def __init__(self, retry: RetryPolicy | None = None) -> None:
        self.adapters: dict[str, ChannelAdapter] = {}
        self.retry = retry or RetryPolicy()

    def register(self, channel: str, adapter: ChannelAdapter) -> None:
        self.adapters[channel] = adapter

    async def deliver(self, conversation_id: int, replies: list[OutboundMessage],
                      reply_to: int | None = None) -> list[int]:
        """Record the replies (answering inbound message `reply_to`, which is marked answered in the same
        transaction), then send them on the conversation's channel; returns the message ids."""
        if not replies and reply_to is None:
            return []
        ids, ctx = await run_in_threadpool(self._record, conversation_id, replies, reply_to, REPLY)
        await self._send(ids, replies, ctx)
        return ids

    async def send(self, conversation_id: int, messages: list[OutboundMessage], purpose: str = AGENT) -> list[int]:
        """Reach a conversation outside the shopper's own turn; returns the recorded message ids."""
        if not messages:
            return []
        ids, ctx = await run_in_threadpool(self._record, conversation_id, messages, None, purpose)
        await self._send(ids, messages, ctx)
        return ids

    async def resume(self, inbound_id: int) -> list[OutboundMessage]:
        """A retried turn that was answered before: send the recorded replies not yet sent, never ask the bot
        again, and return every recorded reply (what REST and web chat hand back)."""
        pending, replies, ctx = await run_in_threadpool(self._recorded, inbound_id)
        if pending:
            await self._send([i for i, _ in pending], [m for _, m in pending], ctx)
        return replies

    async def _send(self, ids: list[int], replies: list[OutboundMessage], ctx: DeliveryContext) -> None:
        adapter = self.adapters.get(ctx.channel)
        if adapter is None or not ids:
            return
        if adapter.in_process:
            try:
                results = await adapter.sender.send(ctx.recipient_id, replies, adapter.make_context(ctx))
            except Exception:
                log.exception("in-process delivery failed on %s for %s", ctx.channel, ctx.conversation_key)
                results = [type("Failure", (), {"ok": False, "error": "in-process delivery failed"})()]
            if not all(getattr(r, "ok", True) for r in results or []):
                await run_in_threadpool(self._record_results, ids, list(results))
            return
        claimed = set(await run_in_threadpool(self._claim, ids))
        if not claimed:
            return
        if len(claimed) < len(ids):  # another path (a retried turn, the sweep) has the others
            ids, replies = zip(*[(i, m) for i, m in zip(ids, replies) if i in claimed])
            ids, replies = list(ids), list(replies)
        await self._attempt(adapter, ids, replies, ctx)

    async def _attempt(self, adapter: ChannelAdapter, ids: list[int], replies: list[OutboundMessage],
                       ctx: DeliveryContext) -> None:
        """Send claimed rows and record what became of each."""
        try:
            results = await adapter.sender.send(ctx.recipient_id, replies, adapter.make_context(ctx))
        except Exception as exc:  # a sender bug or an unreachable provider: recorded, never lost silently
            log.exception("delivery failed on %s for %s", ctx.channel, ctx.conversation_key)
            results = [type("Failure", (), {"ok": False, "error": str(exc)[:400]})()]
        await run_in_threadpool(self._record_results, ids, list(results or []), self.retry)

    async def retry_due(self, now: datetime | None = None, limit: int = 100) -> int:
        """Send what is due: rows whose retry time has come and rows a stopped process recorded but never
        tried; flag rows stuck in `sending` as unconfirmed. Returns how many messages were attempted."""
        batches = await run_in_threadpool(self._claim_due, now or datetime.now(timezone.utc), limit)
        for ids, replies, ctx in batches:
            await self._attempt(self.adapters[ctx.channel], ids, replies, ctx)
        return sum(len(ids) for ids, _, _ in batches)

    async def run_retries(self, interval_s: float = 5.0) -> None:
        """The periodic sweep (supervised by the app): never returns until cancelled."""
        while True:
            try:
                await self.retry_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away for a moment: try again next round
                log.exception("outbound retry sweep failed")
            await asyncio.sleep(interval_s)

    def _claim_due(self, now: datetime, limit: int) -> list[tuple[list[int], list[OutboundMessage], DeliveryContext]]:
        policy = self.retry
        # Only channels this process sends on (another process may have a channel configured that this lacks).
        channels = [name for name, adapter in self.adapters.items() if not adapter.in_process]
        if not channels:
            return []
        with unit_of_work() as session:
            stuck = update(Message).where(
                Message.direction == OUTBOUND, Message.delivery_status == SENDING,
                Message.status_updated_at < now - timedelta(seconds=policy.stuck_after_s),
            ).values(delivery_status=UNCONFIRMED, status_updated_at=now,
                     delivery_error="the process stopped while sending; it may or may not have arrived")
            if session.execute(stuck).rowcount:
                log.warning("outbound messages stuck in sending marked unconfirmed")
            due = or_(Message.retry_at <= now,
                      and_(Message.retry_at.is_(None),
                           Message.status_updated_at < now - timedelta(seconds=policy.orphan_after_s)))
            candidates = session.scalars(
                select(Message.id).join(Conversation).where(
                    Message.direction == OUTBOUND, Message.delivery_status == QUEUED, due,
                    Conversation.channel.in_(channels),
                ).order_by(Message.id).limit(limit)).all()
            claimed = self._claim_in(session, list(candidates), now)
            rows = session.scalars(select(Message).where(Message.id.in_(claimed)).order_by(
                Message.conversation_id, Message.id)).all() if claimed else []
            batches = []
            # One send per turn (an email carries a whole turn) and per purpose, in the order recorded.
            for (conv_id, _, purpose), group in groupby(rows, key=lambda m: (m.conversation_id, m.reply_to_id,
                                                                            m.purpose)):
                group = list(group)
                conv = session.get(Conversation, conv_id)
                ctx = replace(self._context(session, conv, now), purpose=purpose or REPLY)
                batches.append(([m.id for m in group],
                                [OutboundMessage.from_record(m.text, m.payload or {}, m.author) for m in group], ctx))
            return batches

    @staticmethod
    def _claim_in(session, ids: list[int], now: datetime) -> list[int]:
        """queued → sending for those of `ids` still queued; concurrent claimers get disjoint sets."""
        if not ids:
            return []
        claimed = session.execute(update(Message).where(Message.id.in_(ids), Message.delivery_status == QUEUED)
                                  .values(delivery_status=SENDING, status_updated_at=now)
                                  .returning(Message.id)).scalars().all()
        return sorted(claimed)

    def _claim(self, ids: list[int]) -> list[int]:
        with unit_of_work() as session:
            return self._claim_in(session, ids, datetime.now(timezone.utc))

    def _context(self, session, conv: Conversation, now: datetime) -> DeliveryContext:
        last_in = session.scalar(select(Message).where(Message.conversation_id == conv.id,
                                                       Message.direction == INBOUND)
                                 .order_by(Message.id.desc()).limit(1))
        return DeliveryContext(conv.key, conv.channel, conv.external_id, conv.language, conv.last_inbound_at,
                               dict((last_in.payload or {}).get("metadata") or {}) if last_in else {}, now)

    def _record(self, conversation_id: int, replies: list[OutboundMessage], reply_to: int | None = None,
                purpose: str = REPLY) -> tuple[list[int], DeliveryContext]:
        now = datetime.now(timezone.utc)
        with unit_of_work() as session:
            conv = session.get(Conversation, conversation_id)
            adapter = self.adapters.get(conv.channel)
            synchronous = adapter is None or adapter.in_process
            rows = []
            for reply in replies:
                msg = conversations.record(session, conv, OUTBOUND, reply.author, reply.text, reply.as_payload(), now)
                msg.delivery_status = SENT if synchronous else QUEUED
                msg.status_updated_at = now
                msg.reply_to_id = reply_to
                msg.purpose = purpose
                rows.append(msg)
            if reply_to is not None:
                answered = session.get(Message, reply_to)
                if answered is not None and answered.conversation_id == conv.id:
                    answered.answered_at = now
            session.flush()
            return [m.id for m in rows], replace(self._context(session, conv, now), purpose=purpose)

    def _recorded(self, inbound_id: int) -> tuple[list[tuple[int, OutboundMessage]], list[OutboundMessage],
                                                  DeliveryContext]:
        now = datetime.now(timezone.utc)
        with unit_of_work() as session:
            inbound = session.get(Message, inbound_id)
            rows = session.scalars(select(Message).where(Message.reply_to_id == inbound_id)
                                   .order_by(Message.id)).all()
            pending, replies = [], []
            for row in rows:
                message = OutboundMessage.from_record(row.text, row.payload or {}, row.author)
                replies.append(message)
                if row.delivery_status == QUEUED and row.retry_at is None:  # waiting rows: the sweep's
                    pending.append((row.id, message))
                elif row.delivery_status == SENDING:  # died mid-send: at most once, flagged for agents
                    row.delivery_status, row.status_updated_at = UNCONFIRMED, now
                    log.warning("reply %s was being sent when the process stopped; not sent again", row.id)
            return pending, replies, self._context(session, inbound.conversation, now)

    @staticmethod
    def _record_results(ids: list[int], results: list[Any], policy: RetryPolicy | None = None) -> None:
        """One result per message, or (split / merged sends) the last result stands for all of them. A
        temporary failure is queued again for later until the policy's attempts are used up."""
        policy = policy or RetryPolicy()
        now = datetime.now(timezone.utc)
        with unit_of_work() as session:
            for index, message_id in enumerate(ids):
                if not results:
                    break
                result = results[index] if len(results) == len(ids) else results[-1]
                ok, provider_id, error = _result_fields(result)
                msg = session.get(Message, message_id)
                msg.delivery_attempts = (msg.delivery_attempts or 0) + 1
                status = _status_after(result)
                if status == QUEUED and msg.delivery_attempts >= policy.max_attempts:
                    status, error = FAILED, f"gave up after {msg.delivery_attempts} attempts: {error or 'failed'}"
                msg.delivery_status = status
                msg.retry_at = now + policy.delay(msg.delivery_attempts) if status == QUEUED else None
                msg.provider_message_id = provider_id
                msg.delivery_error = None if ok else (error or "failed")[:500]
                msg.status_updated_at = now


class DeliveryReports:
    """Provider status callbacks (e.g. WhatsApp `statuses`) applied to the outbound message they concern."""

    async def record_status(self, channel: str, provider_message_id: str, status: str, at: datetime | None = None,
                            errors: list[dict] | None = None) -> bool:
        return await run_in_threadpool(self._apply, channel, provider_message_id, status, at, errors or [])

    @staticmethod
    def _apply(channel, provider_message_id, status, at, errors) -> bool:
        with unit_of_work() as session:
            msg = session.scalar(select(Message).join(Conversation).where(
                Message.provider_message_id == provider_message_id, Conversation.channel == channel))
            if msg is None:
                return False
            # Reports arrive out of order: never step back from read to delivered; failed always counts.
            if status == FAILED or _RANK.get(status, -1) > _RANK.get(msg.delivery_status or QUEUED, -1):
                msg.delivery_status = status
                msg.status_updated_at = at or datetime.now(timezone.utc)
                if status == FAILED:
                    msg.delivery_error = "; ".join(f"{e.get('code')}: {e.get('title')}" for e in errors)[:500] or "failed"
            return True
