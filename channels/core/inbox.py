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
import random
import socket
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import redis.asyncio as aioredis
from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from starlette.concurrency import run_in_threadpool

from channels.core.messages import InboundMessage
from channels.core.rasa_client import BotUnavailable
from crm.conversations.models import DONE, FAILED, PENDING, PROCESSING, InboundQueueItem, InboxConsumer
from crm.db import dialect_insert, unit_of_work

log = logging.getLogger("crossdesk.inbox")
Process = Callable[[InboundMessage], Awaitable[object]]
MAX_ATTEMPTS = 8  # for errors other than the bot being unavailable, which is retried until it is back
LEASE_S = 60.0  # a claim not renewed for this long belongs to a dead process
STUCK_AFTER_S = 60.0  # a worker loop that has not come round for this long is reported stuck


@dataclass(frozen=True)
class ProcessIdentity:
    """This process, as a consumer-name registration records it."""

    instance: str
    host: str
    pid_namespace: str
    pid: int

    @classmethod
    def current(cls) -> "ProcessIdentity":
        try:
            namespace = os.readlink("/proc/self/ns/pid")
        except OSError:
            namespace = ""
        return cls(uuid.uuid4().hex, socket.gethostname(), namespace, os.getpid())

    def supersedes(self, held: dict) -> bool:
        """True when the process that registered `held` cannot be alive: it is this very instance, or it ran in
        this host's pid namespace with a pid that is now ours or gone. Containers share hostnames (host network)
        and pid 1, hence the namespace: without it nothing but the lease tells a crashed twin from a live one."""
        if held.get("instance") == self.instance:
            return True
        if not self.pid_namespace or held.get("host") != self.host or held.get("pid_namespace") != self.pid_namespace:
            return False
        pid = int(held.get("pid") or 0)
        if pid == self.pid:
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # it exists but is not ours to signal
            return False
        return False

    def as_dict(self) -> dict:
        return {"instance": self.instance, "host": self.host, "pid_namespace": self.pid_namespace, "pid": self.pid}


def consumer_name(identity: ProcessIdentity | None = None) -> str:
    """CROSSDESK_INBOX_CONSUMER when set — stable across restarts of one replica, so a restarted process takes
    its own unfinished claims back at once (registration keeps a live twin from using it too) — else host, pid
    and a random part: never shared, even by containers with one hostname and pid 1 each."""
    from crm.config import get_settings

    identity = identity or ProcessIdentity.current()
    return get_settings().inbox_consumer or f"{identity.host}:{identity.pid}:{identity.instance[:6]}"


async def register_name(try_register: Callable[[str], Awaitable[bool]], preferred: str, identity: ProcessIdentity,
                        wait_s: float) -> str:
    """Take `preferred` if no live process holds it — waiting up to `wait_s` for a crashed holder's registration
    to lapse — else fall back to a name of our own: processing goes on, without the fast restart."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        if await try_register(preferred):
            return preferred
        if loop.time() >= deadline:
            break
        await asyncio.sleep(min(1.0, max(0.05, wait_s / 10)))
    fallback = f"{preferred}~{identity.instance[:8]}"
    log.error("inbox consumer name %r is held by another live process; using %r instead — give every replica "
              "its own CROSSDESK_INBOX_CONSUMER", preferred, fallback)
    await try_register(fallback)
    return fallback


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
        self.identity = ProcessIdentity.current()
        self.consumer = consumer or consumer_name(self.identity)
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

    def _register(self, name: str) -> bool:
        """Hold `name` unless a live process does (its registration is fresh and might be alive)."""
        now = datetime.now(timezone.utc)
        try:
            with unit_of_work() as session:
                row = session.get(InboxConsumer, name, with_for_update=True)
                if row is None:
                    session.add(InboxConsumer(name=name, seen_at=now, **self.identity.as_dict()))
                    return True
                held = {"instance": row.instance, "host": row.host, "pid_namespace": row.pid_namespace,
                        "pid": row.pid}
                if row.seen_at >= now - timedelta(seconds=self.lease_s) and not self.identity.supersedes(held):
                    return False
                for field, value in self.identity.as_dict().items():
                    setattr(row, field, value)
                row.seen_at = now
                return True
        except IntegrityError:  # another process registered it at the same moment
            return False

    def _touch(self) -> None:
        """Show our name is in use; forget registrations nobody has shown for a week."""
        now = datetime.now(timezone.utc)
        with unit_of_work() as session:
            session.execute(update(InboxConsumer).where(InboxConsumer.name == self.consumer,
                                                        InboxConsumer.instance == self.identity.instance)
                            .values(seen_at=now))
            session.execute(delete(InboxConsumer).where(InboxConsumer.seen_at < now - timedelta(days=7)))

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
        self.consumer = await register_name(lambda name: run_in_threadpool(self._register, name), self.consumer,
                                            self.identity, wait_s=self.lease_s + 1)
        await run_in_threadpool(self._recover, True)
        loop = asyncio.get_running_loop()
        last_sweep = loop.time()
        while True:
            self.heartbeat = loop.time()
            if loop.time() - last_sweep > self.lease_s / 3:  # take back what dead processes had claimed
                last_sweep = loop.time()
                await run_in_threadpool(self._touch)
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
    """Redis Streams, partitioned: a conversation always lands on the same of PARTITIONS streams, and each
    partition is read by exactly one live consumer at a time (an owner lease in Redis, renewed while alive) —
    so a conversation's messages are processed in order even with several app processes. Live consumers share
    the partitions evenly; a stopped consumer's partitions (its lease runs out) pass to the others with their
    unacknowledged entries (XAUTOCLAIM), and done entries are trimmed. De-duplication by SET NX on the
    provider message id, in the same script as the XADD."""

    PREFIX = "crossdesk:inbox"
    GROUP = "crossdesk-app"
    PARTITIONS = 16  # fixed: changing it would move conversations between partitions
    LEASE_MS = 30_000  # an owner (or consumer name) not renewed for this long belongs to a stopped process
    SEEN_TTL_S = 7 * 24 * 3600

    def __init__(self, url: str, process: Process, concurrency: int = 8, consumer: str | None = None,
                 lease_ms: int | None = None, maintain_s: float | None = None, partitions: int | None = None):
        self.redis = aioredis.from_url(url)
        self._accept_script = self.redis.register_script(self.ACCEPT_SCRIPT)
        self._hold_script = self.redis.register_script(self.HOLD_SCRIPT)
        self._release_script = self.redis.register_script(self.RELEASE_SCRIPT)
        self.process = process
        self.concurrency = concurrency
        self.identity = ProcessIdentity.current()
        self.consumer = consumer or consumer_name(self.identity)
        self.lease_ms = lease_ms or self.LEASE_MS
        self.maintain_s = maintain_s or self.lease_ms / 1000 / 6
        self.partitions = partitions or self.PARTITIONS
        self.owned: set[int] = set()
        self._queues: dict[tuple[str, str], asyncio.Queue] = {}
        self._workers: dict[tuple[str, str], asyncio.Task] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._inflight: dict[tuple[int, bytes], None] = {}  # (partition, entry id) read by us, not acknowledged
        self._to_release: set[int] = set()
        self.heartbeat: float | None = None
        self.restarts = 0

    # De-duplicate and enqueue atomically, in one round trip.
    ACCEPT_SCRIPT = """
    if KEYS[2] ~= '' and not redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[2]) then return 0 end
    redis.call('XADD', KEYS[1], '*', 'm', ARGV[1])
    return 1
    """
    # Take a lease that is free or already ours (and renew it); 0 if somebody else holds it.
    HOLD_SCRIPT = """
    local held = redis.call('GET', KEYS[1])
    if held and held ~= ARGV[1] then return 0 end
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
    """
    RELEASE_SCRIPT = """
    if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
    return 0
    """

    def stream(self, partition: int) -> str:
        return f"{self.PREFIX}:{partition}"

    def partition_of(self, channel: str, sender_id: str) -> int:
        return zlib.crc32(f"{channel}\0{sender_id}".encode()) % self.partitions

    def _owner_key(self, partition: int) -> str:
        return f"{self.PREFIX}:owner:{partition}"

    async def accept(self, msg: InboundMessage) -> bool:
        seen_key = f"crossdesk:seen:{msg.channel}:{msg.external_id}" if msg.external_id else ""
        payload = json.dumps({"channel": msg.channel, "sender_id": msg.sender_id, "text": msg.text,
                              "metadata": msg.metadata, "external_id": msg.external_id,
                              "received_at": msg.received_at.isoformat()})
        stream = self.stream(self.partition_of(msg.channel, msg.sender_id))
        return bool(await self._accept_script(keys=[stream, seen_key], args=[payload, self.SEEN_TTL_S]))

    async def _ensure_groups(self) -> None:
        for partition in range(self.partitions):
            try:
                await self.redis.xgroup_create(self.stream(partition), self.GROUP, id="0", mkstream=True)
            except aioredis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    # -- consumer name -------------------------------------------------------------------------------------
    async def _register(self, name: str) -> bool:
        key = f"{self.PREFIX}:consumer:{name}"
        mine = json.dumps(self.identity.as_dict())
        if await self.redis.set(key, mine, nx=True, px=self.lease_ms):
            return True
        raw = await self.redis.get(key)
        held = json.loads(raw) if raw else {}
        if raw is None or self.identity.supersedes(held):
            await self.redis.set(key, mine, px=self.lease_ms)
            return True
        return False

    async def _touch_name(self) -> None:
        key = f"{self.PREFIX}:consumer:{self.consumer}"
        await self._hold_script(keys=[key], args=[json.dumps(self.identity.as_dict()), self.lease_ms])
        now_ms = int(time.time() * 1000)
        live = f"{self.PREFIX}:consumers"
        await self.redis.zadd(live, {self.consumer: now_ms})
        await self.redis.zremrangebyscore(live, "-inf", now_ms - self.lease_ms)

    # -- partitions ----------------------------------------------------------------------------------------
    def _busy(self, partition: int) -> bool:
        return any(p == partition for p, _ in self._inflight)

    async def maintain(self) -> None:
        """Renew our name and partitions; give up partitions beyond our fair share (once idle); take free ones
        up to it, with whatever their previous owner left unacknowledged; trim done entries."""
        await self._touch_name()
        for partition in sorted(self.owned):
            if not await self._hold_script(keys=[self._owner_key(partition)], args=[self.consumer, self.lease_ms]):
                log.warning("lost inbox partition %d (our lease ran out)", partition)
                self.owned.discard(partition)
        live = max(1, await self.redis.zcard(f"{self.PREFIX}:consumers"))
        share = -(-self.partitions // live)
        surplus = len(self.owned) - share
        self._to_release = set(sorted(self.owned, reverse=True)[:surplus]) if surplus > 0 else set()
        candidates = [p for p in range(self.partitions) if p not in self.owned]
        random.shuffle(candidates)  # several consumers starting at once do not all race for the same ones
        for partition in candidates:
            if len(self.owned) >= share:
                break
            if await self._hold_script(keys=[self._owner_key(partition)], args=[self.consumer, self.lease_ms]):
                await self._take_over(partition)
                self.owned.add(partition)
        for partition in sorted(self.owned):
            await self._take_over(partition, min_idle_ms=self.lease_ms)  # orphans of an owner that stalled
            await self._trim(partition)

    async def _release_surplus(self) -> None:
        """Give up partitions beyond our share once idle — here, between two reads, never while a read that
        includes them is outstanding (what it returned after the release would be ours and the next owner's)."""
        for partition in sorted(self._to_release):
            if partition in self.owned and not self._busy(partition):
                self.owned.discard(partition)
                self._to_release.discard(partition)
                await self._release_script(keys=[self._owner_key(partition)], args=[self.consumer])

    async def _take_over(self, partition: int, min_idle_ms: int = 0) -> None:
        """Everything unacknowledged in a partition we now own is ours — its owner stopped (or it was us, before
        a restart) — and comes before anything new, in stream order."""
        start = "0-0"
        for _ in range(1000):
            next_start, claimed = (await self.redis.xautoclaim(self.stream(partition), self.GROUP, self.consumer,
                                                               min_idle_ms, start_id=start, count=100))[:2]
            for entry_id, fields in claimed:
                if fields:
                    self._dispatch(partition, entry_id, fields)
            if next_start in (b"0-0", "0-0"):
                return
            start = next_start

    async def _trim(self, partition: int) -> None:
        """Entries older than the oldest unacknowledged one (or, with none, the last delivered) are done."""
        stream = self.stream(partition)
        pending = await self.redis.xpending(stream, self.GROUP)
        if pending.get("pending"):
            floor = pending["min"]
        else:
            groups = [g for g in await self.redis.xinfo_groups(stream) if g["name"] in (self.GROUP.encode(),
                                                                                      self.GROUP)]
            floor = groups[0]["last-delivered-id"] if groups else None
        if floor and floor not in (b"0-0", "0-0"):
            await self.redis.xtrim(stream, minid=floor, approximate=False)

    # -- processing ----------------------------------------------------------------------------------------
    def _dispatch(self, partition: int, entry_id: bytes, fields: dict) -> None:
        if (partition, entry_id) in self._inflight:
            return
        self._inflight[(partition, entry_id)] = None
        data = json.loads(fields[b"m"])
        msg = InboundMessage(channel=data["channel"], sender_id=data["sender_id"], text=data["text"],
                             received_at=datetime.fromisoformat(data["received_at"]),
                             metadata=data.get("metadata") or {}, external_id=data.get("external_id"))
        key = (msg.channel, msg.sender_id)
        queue = self._queues.setdefault(key, asyncio.Queue())
        queue.put_nowait((partition, entry_id, msg))
        if key not in self._workers or self._workers[key].done():
            self._workers[key] = asyncio.create_task(self._work(key, queue))

    async def _work(self, key, queue: asyncio.Queue) -> None:
        while not queue.empty():
            partition, entry_id, msg = queue.get_nowait()
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
                            await self.redis.xadd(f"{self.PREFIX}:failed", {"id": entry_id, "m": json.dumps(
                                {"channel": msg.channel, "sender_id": msg.sender_id, "text": msg.text})})
                            break
                await asyncio.sleep(_backoff(attempts))  # in order: this conversation waits
            await self.redis.xack(self.stream(partition), self.GROUP, entry_id)
            self._inflight.pop((partition, entry_id), None)
        if self._workers.get(key) is asyncio.current_task():
            self._queues.pop(key, None)
            self._workers.pop(key, None)

    def health(self) -> dict:
        age = None if self.heartbeat is None else asyncio.get_running_loop().time() - self.heartbeat
        return {"alive": age is not None and age < STUCK_AFTER_S, "seconds_since_round": age,
                "restarts": self.restarts, "in_flight": len(self._inflight), "consumer": self.consumer,
                "partitions": sorted(self.owned)}

    async def run(self) -> None:
        await self._ensure_groups()
        self.consumer = await register_name(self._register, self.consumer, self.identity,
                                            wait_s=self.lease_ms / 1000 + 1)
        await self.maintain()
        loop = asyncio.get_running_loop()
        maintenance = asyncio.create_task(self._maintain_forever(), name="inbox-maintenance")
        try:
            await self._read_forever(loop)
        finally:
            # Wait for it to end: a stopped consumer that still renewed its leases would hold its name and
            # partitions for ever.
            maintenance.cancel()
            await asyncio.gather(maintenance, return_exceptions=True)

    async def _maintain_forever(self) -> None:
        # Apart from the read loop: a blocking read must not delay renewing our leases. redis-py can swallow
        # a cancellation that arrives mid-command (seen with redis 8.1): the task stays "cancelling" and is
        # stopped here, never left renewing a stopped consumer's leases.
        me = asyncio.current_task()
        while not me.cancelling():
            await asyncio.sleep(self.maintain_s)
            try:
                await self.maintain()
            except aioredis.RedisError:
                if me.cancelling():
                    break
                log.warning("inbox maintenance failed; retrying next round", exc_info=True)
        raise asyncio.CancelledError

    async def _read_forever(self, loop) -> None:
        me = asyncio.current_task()
        while not me.cancelling():  # a cancellation redis-py swallowed mid-read still stops us (see above)
            self.heartbeat = loop.time()
            await self._release_surplus()
            owned = sorted(self.owned)
            if not owned:  # every partition has a live owner; wait for a share
                await asyncio.sleep(min(1.0, self.maintain_s))
                continue
            try:
                reply = await self.redis.xreadgroup(self.GROUP, self.consumer,
                                                    {self.stream(p): ">" for p in owned}, count=100, block=1000)
            except aioredis.ConnectionError:
                log.warning("redis unreachable; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            if me.cancelling():  # read but not dispatched: stays pending, the next owner takes it over
                break
            for stream, entries in reply or []:
                partition = int((stream.decode() if isinstance(stream, bytes) else stream).rsplit(":", 1)[1])
                for entry_id, fields in entries:
                    if fields:
                        self._dispatch(partition, entry_id, fields)
        raise asyncio.CancelledError

    async def aclose(self) -> None:
        for task in self._workers.values():
            task.cancel()
        await self.redis.aclose()


def make_inbox(redis_url: str | None, process: Process):
    return RedisInbox(redis_url, process) if redis_url else DbInbox(process)
