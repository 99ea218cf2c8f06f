"""Durable inbound queue: accept fast, process in order per conversation, lose nothing, answer once.

Providers that push webhooks (WhatsApp, email) get their 200 as soon as the message is stored here; a
worker then runs it through the pipeline. Messages of one conversation are processed strictly in order
(a later one waits while an earlier one is retried, e.g. while Rasa is down); different conversations
proceed in parallel. A provider's retry of the same message id is recognised and dropped.

Two stores, one behaviour: the database (embedded default) or Redis Streams (when REDIS_URL is set).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

import redis.asyncio as aioredis
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from starlette.concurrency import run_in_threadpool

from channels.core.messages import InboundMessage
from channels.core.rasa_client import BotUnavailable
from crm.conversations.models import DONE, FAILED, PENDING, PROCESSING, InboundQueueItem
from crm.db import unit_of_work

log = logging.getLogger("crossdesk.inbox")
Process = Callable[[InboundMessage], Awaitable[object]]
MAX_ATTEMPTS = 8  # for errors other than the bot being unavailable, which is retried until it is back


def _backoff(attempts: int, base: float = 0.5, cap: float = 30.0) -> float:
    return min(cap, base * 2 ** max(0, attempts - 1))


class DbInbox:
    MAX_BATCH = 500

    def __init__(self, process: Process, concurrency: int = 8, poll_s: float = 0.5):
        self.process = process
        self.concurrency = concurrency
        self.poll_s = poll_s
        self._wake = asyncio.Event()
        self._busy: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task] = set()
        self._waiting: list[tuple[InboundMessage, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def accept(self, msg: InboundMessage) -> bool:
        """Store durably; False if this (channel, external id) was accepted before.

        Group commit: webhooks arriving while a write is in flight are stored together in the next
        transaction, so one commit (one fsync) serves many requests; each caller still returns only
        once its own message is committed.
        """
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((msg, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        accepted = await future
        if accepted:
            self._wake.set()
        return accepted

    async def _write_batches(self) -> None:
        await asyncio.sleep(0)  # let requests already being handled join this batch
        while self._waiting:
            batch, self._waiting = self._waiting[:self.MAX_BATCH], self._waiting[self.MAX_BATCH:]
            try:
                results = await run_in_threadpool(self._insert_many, [msg for msg, _ in batch])
            except Exception as exc:  # the database is down: every caller answers an error, the provider retries
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), accepted in zip(batch, results):
                if not future.done():
                    future.set_result(accepted)

    @staticmethod
    def _insert_many(messages: list[InboundMessage]) -> list[bool]:
        """One multi-row INSERT … ON CONFLICT DO NOTHING RETURNING per batch; a repeated provider id (earlier or
        in this very batch) is not stored again and its caller gets False."""
        table = InboundQueueItem.__table__
        first: dict[tuple[str, str], int] = {}
        rows, index_of_row = [], []
        for i, msg in enumerate(messages):
            if msg.external_id is not None:
                key = (msg.channel, msg.external_id)
                if key in first:
                    continue
                first[key] = i
            rows.append({"channel": msg.channel, "sender_id": msg.sender_id, "external_id": msg.external_id,
                         "text": msg.text, "meta": msg.metadata, "received_at": msg.received_at,
                         "status": PENDING, "attempts": 0})
            index_of_row.append(i)
        accepted = [False] * len(messages)
        with unit_of_work() as session:
            insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
            stmt = insert(table).on_conflict_do_nothing(index_elements=["channel", "external_id"]) \
                .returning(table.c.channel, table.c.external_id)
            returned = session.execute(stmt, rows).all() if rows else []
        stored = {(channel, external_id) for channel, external_id in returned}
        for i in index_of_row:
            msg = messages[i]
            accepted[i] = msg.external_id is None or (msg.channel, msg.external_id) in stored
        return accepted

    @staticmethod
    def _recover() -> None:
        """Items a crashed worker had claimed go back to the queue."""
        with unit_of_work() as session:
            session.execute(update(InboundQueueItem).where(InboundQueueItem.status == PROCESSING)
                            .values(status=PENDING))

    @staticmethod
    def _ready_conversations(busy: set[tuple[str, str]]) -> list[tuple[str, str]]:
        """Conversations whose oldest pending item may run now (not backing off, not already running)."""
        now = datetime.now(timezone.utc)
        with unit_of_work() as session:
            rows = session.execute(select(InboundQueueItem.channel, InboundQueueItem.sender_id,
                                          InboundQueueItem.not_before)
                                   .where(InboundQueueItem.status == PENDING)
                                   .order_by(InboundQueueItem.id).limit(2000)).all()
        seen, ready = set(), []
        for channel, sender, not_before in rows:
            key = (channel, sender)
            if key in seen:
                continue
            seen.add(key)
            if key not in busy and (not_before is None or not_before <= now):
                ready.append(key)
        return ready

    @staticmethod
    def _claim_next(key: tuple[str, str]) -> tuple[int, InboundMessage] | None:
        now = datetime.now(timezone.utc)
        with unit_of_work() as session:
            item = session.scalar(select(InboundQueueItem).where(
                InboundQueueItem.channel == key[0], InboundQueueItem.sender_id == key[1],
                InboundQueueItem.status == PENDING).order_by(InboundQueueItem.id).limit(1))
            if item is None or (item.not_before is not None and item.not_before > now):
                return None
            claimed = session.execute(update(InboundQueueItem).where(
                InboundQueueItem.id == item.id, InboundQueueItem.status == PENDING).values(status=PROCESSING))
            if claimed.rowcount != 1:  # another worker took it
                return None
            return item.id, InboundMessage(channel=item.channel, sender_id=item.sender_id, text=item.text,
                                           received_at=item.received_at, metadata=dict(item.meta or {}),
                                           external_id=item.external_id)

    @staticmethod
    def _finish(item_id: int, error: str | None, retry: bool) -> None:
        now = datetime.now(timezone.utc)
        with unit_of_work() as session:
            item = session.get(InboundQueueItem, item_id)
            if error is None:
                item.status, item.processed_at, item.last_error = DONE, now, None
                return
            item.attempts += 1
            item.last_error = error[:500]
            if retry or item.attempts < MAX_ATTEMPTS:
                item.status = PENDING
                item.not_before = now + timedelta(seconds=_backoff(item.attempts))
            else:
                item.status = FAILED  # kept for an agent; later messages of the conversation go on
                item.processed_at = now

    async def _drain_conversation(self, key: tuple[str, str]) -> None:
        try:
            while True:
                claimed = await run_in_threadpool(self._claim_next, key)
                if claimed is None:
                    return
                item_id, msg = claimed
                try:
                    await self.process(msg)
                except BotUnavailable as exc:
                    await run_in_threadpool(self._finish, item_id, f"bot unavailable: {exc}", True)
                    return  # keep order: the rest of this conversation waits for the retry
                except Exception as exc:
                    log.exception("processing inbound %s failed", item_id)
                    await run_in_threadpool(self._finish, item_id, repr(exc), False)
                    return
                await run_in_threadpool(self._finish, item_id, None, False)
        finally:
            self._busy.discard(key)
            self._wake.set()

    async def run(self) -> None:
        await run_in_threadpool(self._recover)
        while True:
            self._wake.clear()
            for key in await run_in_threadpool(self._ready_conversations, set(self._busy)):
                if len(self._busy) >= self.concurrency:
                    break
                self._busy.add(key)
                task = asyncio.create_task(self._drain_conversation(key))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            except asyncio.TimeoutError:
                pass


class RedisInbox:
    """Redis Streams: XADD on accept, a consumer group reads, XACK after processing; unacknowledged
    entries (a crash) are read again on start. De-duplication by SET NX on the provider message id."""

    STREAM = "crossdesk:inbox"
    GROUP = "crossdesk-app"
    SEEN_TTL_S = 7 * 24 * 3600

    def __init__(self, url: str, process: Process, concurrency: int = 8):
        self.redis = aioredis.from_url(url)
        self._accept_script = self.redis.register_script(self.ACCEPT_SCRIPT)
        self.process = process
        self.concurrency = concurrency
        # Stable across restarts, so a restarted app re-reads the entries it had not acknowledged.
        self.consumer = os.environ.get("CROSSDESK_INBOX_CONSUMER") or socket.gethostname()
        self._queues: dict[tuple[str, str], asyncio.Queue] = {}
        self._workers: dict[tuple[str, str], asyncio.Task] = {}
        self._slots = asyncio.Semaphore(concurrency)

    # De-duplicate and enqueue atomically, in one round trip.
    ACCEPT_SCRIPT = """
    if KEYS[2] ~= '' and not redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[2]) then return 0 end
    redis.call('XADD', KEYS[1], '*', 'm', ARGV[1])
    return 1
    """

    async def accept(self, msg: InboundMessage) -> bool:
        seen_key = f"crossdesk:seen:{msg.channel}:{msg.external_id}" if msg.external_id else ""
        payload = json.dumps({"channel": msg.channel, "sender_id": msg.sender_id, "text": msg.text,
                              "metadata": msg.metadata, "external_id": msg.external_id,
                              "received_at": msg.received_at.isoformat()})
        return bool(await self._accept_script(keys=[self.STREAM, seen_key], args=[payload, self.SEEN_TTL_S]))

    async def _ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.STREAM, self.GROUP, id="0", mkstream=True)
        except aioredis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _dispatch(self, entry_id: bytes, fields: dict) -> None:
        data = json.loads(fields[b"m"])
        msg = InboundMessage(channel=data["channel"], sender_id=data["sender_id"], text=data["text"],
                             received_at=datetime.fromisoformat(data["received_at"]),
                             metadata=data.get("metadata") or {}, external_id=data.get("external_id"))
        key = (msg.channel, msg.sender_id)
        queue = self._queues.setdefault(key, asyncio.Queue())
        queue.put_nowait((entry_id, msg))
        if key not in self._workers or self._workers[key].done():
            self._workers[key] = asyncio.create_task(self._work(key, queue))

    async def _work(self, key, queue: asyncio.Queue) -> None:
        while not queue.empty():
            entry_id, msg = queue.get_nowait()
            attempts = 0
            while True:
                async with self._slots:
                    try:
                        await self.process(msg)
                        break
                    except BotUnavailable:
                        attempts += 1
                    except Exception:
                        log.exception("processing inbound %s failed", entry_id)
                        attempts += 1
                        if attempts >= MAX_ATTEMPTS:
                            await self.redis.xadd(f"{self.STREAM}:failed", {"id": entry_id, "m": json.dumps(
                                {"channel": msg.channel, "sender_id": msg.sender_id, "text": msg.text})})
                            break
                await asyncio.sleep(_backoff(attempts))  # in order: this conversation waits
            await self.redis.xack(self.STREAM, self.GROUP, entry_id)

    async def run(self) -> None:
        await self._ensure_group()
        # Our own unacknowledged entries first (a restart after a crash), then new ones.
        start = "0"
        while True:
            try:
                reply = await self.redis.xreadgroup(self.GROUP, self.consumer, {self.STREAM: start},
                                                    count=100, block=1000)
            except aioredis.ConnectionError:
                log.warning("redis unreachable; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            entries = reply[0][1] if reply else []
            for entry_id, fields in entries:
                if fields:
                    self._dispatch(entry_id, fields)
            if start != ">":  # still replaying our own pending entries
                start = entries[-1][0] if entries else ">"

    async def aclose(self) -> None:
        await self.redis.aclose()


def make_inbox(redis_url: str | None, process: Process):
    return RedisInbox(redis_url, process) if redis_url else DbInbox(process)
