"""Durable inbound queue: accept fast, process in order per conversation, lose nothing, answer once.

Providers that push webhooks (WhatsApp, email) get their 200 as soon as the message is stored here; a
worker then runs it through the pipeline. Messages of one conversation are processed strictly in order
(a later one waits while an earlier one is retried, e.g. while Rasa is down); different conversations
proceed in parallel. A provider's retry of the same message id is recognised and dropped.

Two stores, one behaviour: the database (embedded default) or Redis Streams (when REDIS_URL is set).

Several app processes may run at once. A database claim is a lease (`claimed_by`, `lease_until`) renewed
while the message is worked on: another live process's in-flight message is never taken back, only an
expired lease (its process died) or this worker's own claims after a restart; and a conversation's next
message is claimed only while no earlier one of it is in flight anywhere, so order holds across processes.
`supervise` restarts a crashed worker; `health()` tells /readyz whether it is alive and not stuck.
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
from sqlalchemy import exists, select, update
from sqlalchemy.orm import aliased
from starlette.concurrency import run_in_threadpool

from channels.core.messages import InboundMessage
from channels.core.rasa_client import BotUnavailable
from crm.conversations.models import DONE, FAILED, PENDING, PROCESSING, InboundQueueItem
from crm.db import dialect_insert, unit_of_work

log = logging.getLogger("crossdesk.inbox")
Process = Callable[[InboundMessage], Awaitable[object]]
MAX_ATTEMPTS = 8  # for errors other than the bot being unavailable, which is retried until it is back
LEASE_S = 60.0  # a claim not renewed for this long belongs to a dead process
STUCK_AFTER_S = 60.0  # a worker loop that has not come round for this long is reported stuck


def consumer_name() -> str:
    """CROSSDESK_INBOX_CONSUMER when set — stable across restarts of one replica, so a restarted process takes
    its own unfinished claims back at once — else host and process id (unique, never shared by two live
    processes; a restart then waits for its old leases to expire)."""
    from crm.config import get_settings

    return get_settings().inbox_consumer or f"{socket.gethostname()}:{os.getpid()}"


async def supervise(make_run: Callable[[], Awaitable[None]], worker: object, name: str = "inbox") -> None:
    """Run the worker loop forever: a crash is logged and the loop restarted with back-off."""
    failures = 0
    while True:
        try:
            await make_run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            failures += 1
            setattr(worker, "restarts", getattr(worker, "restarts", 0) + 1)
            log.exception("%s worker crashed (%d); restarting", name, failures)
            await asyncio.sleep(_backoff(failures, base=0.2, cap=10.0))


def _backoff(attempts: int, base: float = 0.5, cap: float = 30.0) -> float:
    return min(cap, base * 2 ** max(0, attempts - 1))


class DbInbox:
    MAX_BATCH = 500

    def __init__(self, process: Process, concurrency: int = 8, poll_s: float = 0.5, consumer: str | None = None,
                 lease_s: float = LEASE_S):
        self.process = process
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.consumer = consumer or consumer_name()
        self.lease_s = lease_s
        self.heartbeat: float | None = None  # loop time of the last round (health)
        self.restarts = 0
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
            insert = dialect_insert(session)
            stmt = insert(table).on_conflict_do_nothing(index_elements=["channel", "external_id"]) \
                .returning(table.c.channel, table.c.external_id)
            returned = session.execute(stmt, rows).all() if rows else []
        stored = {(channel, external_id) for channel, external_id in returned}
        for i in index_of_row:
            msg = messages[i]
            accepted[i] = msg.external_id is None or (msg.channel, msg.external_id) in stored
        return accepted

    def _recover(self, own: bool) -> int:
        """Claims whose lease expired (their process died) go back to the queue — and, at start, this worker's
        own earlier claims (it was restarted). A live process's claims are never touched."""
        now = datetime.now(timezone.utc)
        expired = InboundQueueItem.lease_until.is_(None) | (InboundQueueItem.lease_until < now)
        if own:
            expired = expired | (InboundQueueItem.claimed_by == self.consumer)
        with unit_of_work() as session:
            result = session.execute(update(InboundQueueItem).where(InboundQueueItem.status == PROCESSING, expired)
                                     .values(status=PENDING, claimed_by=None, lease_until=None))
            return result.rowcount or 0

    def _renew(self, item_id: int) -> None:
        until = datetime.now(timezone.utc) + timedelta(seconds=self.lease_s)
        with unit_of_work() as session:
            session.execute(update(InboundQueueItem).where(InboundQueueItem.id == item_id,
                                                           InboundQueueItem.claimed_by == self.consumer)
                            .values(lease_until=until))

    def health(self) -> dict:
        age = None if self.heartbeat is None else asyncio.get_running_loop().time() - self.heartbeat
        return {"alive": age is not None and age < STUCK_AFTER_S, "seconds_since_round": age,
                "restarts": self.restarts, "busy_conversations": len(self._busy)}

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

    def _claim_next(self, key: tuple[str, str]) -> tuple[int, InboundMessage] | None:
        now = datetime.now(timezone.utc)
        same = (InboundQueueItem.channel == key[0]) & (InboundQueueItem.sender_id == key[1])
        with unit_of_work() as session:
            item = session.scalar(select(InboundQueueItem).where(same, InboundQueueItem.status == PENDING)
                                  .order_by(InboundQueueItem.id).limit(1))
            if item is None or (item.not_before is not None and item.not_before > now):
                return None
            in_flight = aliased(InboundQueueItem)
            claimed = session.execute(update(InboundQueueItem).where(
                InboundQueueItem.id == item.id, InboundQueueItem.status == PENDING,
                ~exists().where(in_flight.channel == key[0], in_flight.sender_id == key[1],
                                in_flight.status == PROCESSING, in_flight.id != item.id))
                .values(status=PROCESSING, claimed_by=self.consumer,
                        lease_until=now + timedelta(seconds=self.lease_s)))
            if claimed.rowcount != 1:  # another worker took it, or has this conversation's previous message
                return None
            return item.id, InboundMessage(channel=item.channel, sender_id=item.sender_id, text=item.text,
                                           received_at=item.received_at, metadata=dict(item.meta or {}),
                                           external_id=item.external_id)

    @staticmethod
    def _finish(item_id: int, error: str | None, retry: bool) -> None:
        now = datetime.now(timezone.utc)
        with unit_of_work() as session:
            item = session.get(InboundQueueItem, item_id)
            item.claimed_by, item.lease_until = None, None
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
                renewing = asyncio.create_task(self._keep_lease(item_id))
                try:
                    await self.process(msg)
                except BotUnavailable as exc:
                    await run_in_threadpool(self._finish, item_id, f"bot unavailable: {exc}", True)
                    return  # keep order: the rest of this conversation waits for the retry
                except Exception as exc:
                    log.exception("processing inbound %s failed", item_id)
                    await run_in_threadpool(self._finish, item_id, repr(exc), False)
                    return
                finally:
                    renewing.cancel()
                await run_in_threadpool(self._finish, item_id, None, False)
        finally:
            self._busy.discard(key)
            self._wake.set()

    async def _keep_lease(self, item_id: int) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await run_in_threadpool(self._renew, item_id)
            except Exception:  # the database blinked; the next renewal may work, the lease has time left
                log.warning("could not renew the lease of inbound %s", item_id, exc_info=True)

    async def run(self) -> None:
        await run_in_threadpool(self._recover, True)
        loop = asyncio.get_running_loop()
        last_sweep = loop.time()
        while True:
            self.heartbeat = loop.time()
            if loop.time() - last_sweep > self.lease_s / 2:  # take back what dead processes had claimed
                last_sweep = loop.time()
                if await run_in_threadpool(self._recover, False):
                    log.warning("took back inbound messages of a process whose lease expired")
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

    CLAIM_IDLE_MS = 60_000  # an entry nobody touched for this long belongs to a consumer that stopped
    MAINTAIN_S = 10.0

    def __init__(self, url: str, process: Process, concurrency: int = 8, consumer: str | None = None,
                 claim_idle_ms: int | None = None, maintain_s: float | None = None):
        self.redis = aioredis.from_url(url)
        self._accept_script = self.redis.register_script(self.ACCEPT_SCRIPT)
        self.process = process
        self.concurrency = concurrency
        # Stable across restarts when CROSSDESK_INBOX_CONSUMER is set: a restarted app re-reads its own
        # unacknowledged entries at once; anything else a stopped consumer left is claimed after CLAIM_IDLE_MS.
        self.consumer = consumer or consumer_name()
        self.claim_idle_ms = claim_idle_ms or self.CLAIM_IDLE_MS
        self.maintain_s = maintain_s or self.MAINTAIN_S
        self._queues: dict[tuple[str, str], asyncio.Queue] = {}
        self._workers: dict[tuple[str, str], asyncio.Task] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._inflight: set[bytes] = set()  # read by us, not yet acknowledged
        self.heartbeat: float | None = None
        self.restarts = 0

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
        if entry_id in self._inflight:
            return
        self._inflight.add(entry_id)
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
            self._inflight.discard(entry_id)

    async def maintain(self) -> None:
        """Keep our in-flight entries ours, take over what stopped consumers left, trim what all have done."""
        if self._inflight:  # XCLAIM to ourselves resets their idle time: nobody takes a live consumer's work
            await self.redis.xclaim(self.STREAM, self.GROUP, self.consumer, 0, list(self._inflight), justid=True)
        start = "0-0"
        for _ in range(100):
            reply = await self.redis.xautoclaim(self.STREAM, self.GROUP, self.consumer, self.claim_idle_ms,
                                                start_id=start, count=100)
            next_start, claimed = reply[0], reply[1]
            for entry_id, fields in claimed:
                if fields:
                    log.warning("took over inbound %s from a consumer that stopped", entry_id)
                    self._dispatch(entry_id, fields)
            if next_start in (b"0-0", "0-0"):
                break
            start = next_start
        await self._trim()

    async def _trim(self) -> None:
        """Entries older than the oldest unacknowledged one (or, with none, the last delivered) are done."""
        pending = await self.redis.xpending(self.STREAM, self.GROUP)
        if pending.get("pending"):
            floor = pending["min"]
        else:
            groups = [g for g in await self.redis.xinfo_groups(self.STREAM) if g["name"] in (self.GROUP.encode(),
                                                                                           self.GROUP)]
            floor = groups[0]["last-delivered-id"] if groups else None
        if floor and floor not in (b"0-0", "0-0"):
            await self.redis.xtrim(self.STREAM, minid=floor, approximate=False)

    def health(self) -> dict:
        age = None if self.heartbeat is None else asyncio.get_running_loop().time() - self.heartbeat
        return {"alive": age is not None and age < STUCK_AFTER_S, "seconds_since_round": age,
                "restarts": self.restarts, "in_flight": len(self._inflight)}

    async def run(self) -> None:
        await self._ensure_group()
        # Our own unacknowledged entries first (a restart after a crash), then new ones.
        start = "0"
        loop = asyncio.get_running_loop()
        maintenance = asyncio.create_task(self._maintain_forever(), name="inbox-maintenance")
        try:
            await self._read_forever(start, loop)
        finally:
            maintenance.cancel()

    async def _maintain_forever(self) -> None:
        while True:  # apart from the read loop: a blocking read must not delay keeping our entries ours
            try:
                await self.maintain()
            except aioredis.RedisError:
                log.warning("inbox maintenance failed; retrying next round", exc_info=True)
            await asyncio.sleep(self.maintain_s)

    async def _read_forever(self, start: str, loop) -> None:
        while True:
            self.heartbeat = loop.time()
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
        for task in self._workers.values():
            task.cancel()
        await self.redis.aclose()


def make_inbox(redis_url: str | None, process: Process):
    return RedisInbox(redis_url, process) if redis_url else DbInbox(process)
