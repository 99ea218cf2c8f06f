"""The durable inbox: order per conversation, nothing lost while the bot is down, nothing answered twice."""
from __future__ import annotations

import asyncio
import os
import random
import uuid
from datetime import datetime, timezone

import redis

from channels.core.inbox import DbInbox, ProcessIdentity, RedisInbox, register_name
from channels.core.messages import InboundMessage
from channels.core.rasa_client import BotUnavailable

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/5"


def message(conv: str, n: int, external_id: str | None = None) -> InboundMessage:
    return InboundMessage(channel="whatsapp", sender_id=conv, text=f"{conv} message {n}",
                          received_at=datetime.now(timezone.utc), external_id=external_id or f"wamid.{conv}.{n}")


class FlakyBot:
    """Processes messages, refusing (BotUnavailable) while `down` is set; records what it handled."""

    def __init__(self):
        self.down = False
        self.handled: list[InboundMessage] = []
        self.refused = 0

    async def __call__(self, msg: InboundMessage):
        await asyncio.sleep(0.001)
        if self.down:
            self.refused += 1
            raise BotUnavailable("rasa stopped")
        self.handled.append(msg)


async def wait_until(predicate, timeout=20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def run_scenario(make_inbox):
    """20 messages in 3 conversations arrive while the bot is down; it comes back; each is handled once, in order."""
    bot = FlakyBot()
    bot.down = True
    inbox = make_inbox(bot)
    worker = asyncio.create_task(inbox.run())
    try:
        sent = {"c1": [], "c2": [], "c3": []}
        convs = ["c1", "c2", "c3"]
        for n in range(20):
            conv = convs[n % 3]
            msg = message(conv, n)
            assert await inbox.accept(msg) is True
            assert await inbox.accept(msg) is False  # the provider's retry of the same id is dropped
            sent[conv].append(msg.text)
        await wait_until(lambda: bot.refused >= 3)  # tried while down...
        assert bot.handled == []
        bot.down = False  # ...Rasa is back
        await wait_until(lambda: len(bot.handled) == 20, timeout=60)
        await asyncio.sleep(0.3)
        assert len(bot.handled) == 20  # once each
        for conv, texts in sent.items():
            assert [m.text for m in bot.handled if m.sender_id == conv] == texts  # in order
    finally:
        worker.cancel()


def test_db_inbox_survives_a_stopped_bot(app_db):
    asyncio.run(run_scenario(lambda bot: DbInbox(bot, poll_s=0.05)))


def test_redis_inbox_survives_a_stopped_bot():
    redis.Redis.from_url(REDIS_URL).flushdb()

    async def scenario():
        inboxes = []

        def make(bot):
            inbox = RedisInbox(REDIS_URL, bot)
            inboxes.append(inbox)
            return inbox

        try:
            await run_scenario(make)
        finally:
            for inbox in inboxes:
                await inbox.aclose()

    asyncio.run(scenario())
    redis.Redis.from_url(REDIS_URL).flushdb()


def test_db_inbox_recovers_items_claimed_before_a_crash(app_db):
    from crm.conversations.models import DONE, PROCESSING, InboundQueueItem
    from crm.db import unit_of_work

    async def scenario():
        first = DbInbox(FlakyBot())
        assert await first.accept(message("c9", 1))
        with unit_of_work() as session:  # a worker claimed it and died mid-way
            session.query(InboundQueueItem).update({"status": PROCESSING})
        bot = FlakyBot()
        restarted = DbInbox(bot, poll_s=0.05)
        worker = asyncio.create_task(restarted.run())
        try:
            await wait_until(lambda: len(bot.handled) == 1)
        finally:
            worker.cancel()
        with unit_of_work() as session:
            assert [i.status for i in session.query(InboundQueueItem)] == [DONE]

    asyncio.run(scenario())


def test_redis_inbox_rereads_unacknowledged_entries_after_restart():
    redis.Redis.from_url(REDIS_URL).flushdb()
    consumer = f"test-{uuid.uuid4().hex[:6]}"

    async def scenario():
        crashed_bot = FlakyBot()
        crashed_bot.down = True
        first = RedisInbox(REDIS_URL, crashed_bot, consumer=consumer)
        worker = asyncio.create_task(first.run())
        await first.accept(message("c7", 1))
        await wait_until(lambda: crashed_bot.refused >= 1)
        worker.cancel()  # the app dies before acknowledging
        await first.aclose()
        bot = FlakyBot()
        second = RedisInbox(REDIS_URL, bot, consumer=consumer)
        worker = asyncio.create_task(second.run())
        try:
            await wait_until(lambda: len(bot.handled) == 1)
        finally:
            worker.cancel()
            await second.aclose()

    asyncio.run(scenario())
    redis.Redis.from_url(REDIS_URL).flushdb()


def test_db_inbox_leaves_a_live_processes_claim_alone_and_keeps_order_across_processes(app_db):
    """Process A has claimed a conversation's first message (live lease). Process B must neither take it nor
    run the conversation's second message meanwhile; once A's lease expires (A died), B takes both, in order."""
    from datetime import timedelta

    from crm.conversations.models import DONE, PROCESSING, InboundQueueItem
    from crm.db import unit_of_work

    async def scenario():
        a = DbInbox(FlakyBot(), consumer="process-a")
        assert await a.accept(message("c5", 1)) and await a.accept(message("c5", 2))
        assert a._claim_next(("whatsapp", "c5"))[1].text == "c5 message 1"  # A works on it, lease live
        bot = FlakyBot()
        b = DbInbox(bot, poll_s=0.05, consumer="process-b", lease_s=60)
        worker = asyncio.create_task(b.run())
        try:
            await asyncio.sleep(1.0)
            assert bot.handled == []  # neither A's message nor the one after it
            with unit_of_work() as session:  # A dies: its lease runs out
                session.query(InboundQueueItem).filter(InboundQueueItem.status == PROCESSING).update(
                    {"lease_until": datetime.now(timezone.utc) - timedelta(seconds=1)})
            b.lease_s = 0.2  # sweep soon
            await wait_until(lambda: len(bot.handled) == 2)
            assert [m.text for m in bot.handled] == ["c5 message 1", "c5 message 2"]
        finally:
            worker.cancel()
        with unit_of_work() as session:
            assert [i.status for i in session.query(InboundQueueItem).order_by(InboundQueueItem.id)] == [DONE, DONE]

    asyncio.run(scenario())


def test_db_inbox_renews_its_lease_while_a_message_takes_long(app_db):
    from crm.conversations.models import InboundQueueItem
    from crm.db import unit_of_work

    class SlowBot(FlakyBot):
        async def __call__(self, msg):
            await asyncio.sleep(1.0)
            self.handled.append(msg)

    async def scenario():
        bot = SlowBot()
        inbox = DbInbox(bot, poll_s=0.05, consumer="slow", lease_s=0.3)
        assert await inbox.accept(message("c6", 1))
        worker = asyncio.create_task(inbox.run())
        try:
            await asyncio.sleep(0.7)  # past the first lease: it must have been renewed
            with unit_of_work() as session:
                item = session.query(InboundQueueItem).one()
                assert item.claimed_by == "slow" and item.lease_until > datetime.now(timezone.utc)
            await wait_until(lambda: len(bot.handled) == 1)
            await asyncio.sleep(0.5)
            assert len(bot.handled) == 1  # its own sweep never handed it out twice
        finally:
            worker.cancel()

    asyncio.run(scenario())


class RecordingBot(FlakyBot):
    """Records which consumer handled what; takes `delay` seconds per message (jittered, to expose reordering)."""

    def __init__(self, name: str, log: list, delay: float = 0.01):
        super().__init__()
        self.name, self.log, self.delay = name, log, delay

    async def __call__(self, msg):
        await asyncio.sleep(self.delay * random.random())
        if self.down:
            self.refused += 1
            raise BotUnavailable("rasa stopped")
        self.handled.append(msg)
        self.log.append((self.name, msg.sender_id, msg.text))


async def stop(inbox: RedisInbox, task: asyncio.Task) -> None:
    """The process stops: no acknowledgement, no release — as if it was killed."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await inbox.aclose()


def test_redis_partitions_keep_each_conversation_in_order_across_two_consumers():
    redis.Redis.from_url(REDIS_URL).flushdb()

    async def scenario():
        handled: list = []
        a = RedisInbox(REDIS_URL, RecordingBot("a", handled), consumer="a", lease_ms=2000, maintain_s=0.1)
        b = RedisInbox(REDIS_URL, RecordingBot("b", handled), consumer="b", lease_ms=2000, maintain_s=0.1)
        tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
        try:
            await wait_until(lambda: len(a.owned) == len(b.owned) == 8)  # the partitions are shared evenly
            assert not a.owned & b.owned
            sent: dict[str, list[str]] = {}
            for n in range(96):
                conv = f"c{n % 16}"
                msg = message(conv, n)
                assert await (a if n % 2 else b).accept(msg)  # either process may take the webhook
                sent.setdefault(conv, []).append(msg.text)
            await wait_until(lambda: len(handled) == 96, timeout=60)
            await asyncio.sleep(0.3)
            assert len(handled) == 96  # once each
            for conv, texts in sent.items():
                assert [text for _, c, text in handled if c == conv] == texts  # in order, across processes
                assert len({who for who, c, _ in handled if c == conv}) == 1  # one owner per conversation
            assert {who for who, _, _ in handled} == {"a", "b"}  # both took part
        finally:
            for inbox, task in zip((a, b), tasks):
                await stop(inbox, task)

    asyncio.run(scenario())
    redis.Redis.from_url(REDIS_URL).flushdb()


def test_redis_stopped_consumers_partitions_pass_on_with_their_entries_but_a_live_ones_stay():
    redis.Redis.from_url(REDIS_URL).flushdb()

    async def scenario():
        handled: list = []
        live_bot = RecordingBot("live", handled, delay=0)
        dead_bot = RecordingBot("dead", handled)
        dead_bot.down = True
        live = RedisInbox(REDIS_URL, live_bot, consumer="live", lease_ms=1000, maintain_s=0.1)
        dead = RedisInbox(REDIS_URL, dead_bot, consumer="dead", lease_ms=1000, maintain_s=0.1)
        live_task, dead_task = asyncio.create_task(live.run()), asyncio.create_task(dead.run())
        await wait_until(lambda: len(live.owned) == len(dead.owned) == 8)
        # a conversation on a partition each of them owns
        on_dead = next(f"x{i}" for i in range(1000) if dead.partition_of("whatsapp", f"x{i}") in dead.owned)
        on_live = next(f"y{i}" for i in range(1000) if live.partition_of("whatsapp", f"y{i}") in live.owned)
        for n in range(3):
            await live.accept(message(on_dead, n))
        await wait_until(lambda: dead_bot.refused >= 1)
        await stop(dead, dead_task)  # killed with three unacknowledged messages
        slow = asyncio.Event()

        async def slow_then_record(msg):
            if msg.sender_id == on_live:
                await slow.wait()
            await RecordingBot.__call__(live_bot, msg)
        live.process = slow_then_record
        await live.accept(message(on_live, 0))
        await wait_until(lambda: bool(live._inflight))
        heir = RedisInbox(REDIS_URL, RecordingBot("heir", handled, delay=0), consumer="heir", lease_ms=1000,
                          maintain_s=0.1)
        heir_task = asyncio.create_task(heir.run())
        try:
            # the dead consumer's partitions pass on once its lease runs out, with its entries, in order
            await wait_until(lambda: [t for _, c, t in handled if c == on_dead] == [
                f"{on_dead} message {n}" for n in range(3)], timeout=15)
            await wait_until(lambda: len(live.owned) == len(heir.owned) == 8)
            # the partition with the live consumer's slow message in flight stayed its own
            assert live.partition_of("whatsapp", on_live) in live.owned
            slow.set()
            await wait_until(lambda: any(c == on_live for _, c, _ in handled))
            await asyncio.sleep(0.5)
            assert [(who, c) for who, c, _ in handled if c == on_live] == [("live", on_live)]
            assert len(handled) == 4  # nothing twice
            for p in range(16):  # done entries are trimmed
                await (heir if p in heir.owned else live)._trim(p)
            lengths = [await heir.redis.xlen(heir.stream(p)) for p in range(16)]
            assert sum(lengths) <= 16
        finally:
            await stop(live, live_task)
            await stop(heir, heir_task)

    asyncio.run(scenario())
    redis.Redis.from_url(REDIS_URL).flushdb()


def other_host() -> ProcessIdentity:
    me = ProcessIdentity.current()
    return ProcessIdentity(uuid.uuid4().hex, "another-host", me.pid_namespace, 1)


def test_redis_consumer_name_is_never_shared_by_two_live_processes():
    redis.Redis.from_url(REDIS_URL).flushdb()

    async def scenario():
        first = RedisInbox(REDIS_URL, FlakyBot(), consumer="replica-1", lease_ms=600, maintain_s=0.1)
        first_task = asyncio.create_task(first.run())
        await wait_until(lambda: len(first.owned) == 16)
        twin = RedisInbox(REDIS_URL, FlakyBot(), consumer="replica-1", lease_ms=600, maintain_s=0.1)
        twin.identity = other_host()  # misconfigured: the same name on another machine
        twin_task = asyncio.create_task(twin.run())
        try:
            await wait_until(lambda: twin.consumer != "replica-1" and bool(twin.owned), timeout=10)
            assert twin.consumer.startswith("replica-1~")
            await wait_until(lambda: len(first.owned) == len(twin.owned) == 8)  # two consumers, not one
        finally:
            await stop(twin, twin_task)
        await stop(first, first_task)  # crashed: its registration lapses after the lease
        successor = RedisInbox(REDIS_URL, FlakyBot(), consumer="replica-1", lease_ms=600, maintain_s=0.1)
        successor.identity = other_host()
        task = asyncio.create_task(successor.run())
        try:
            await wait_until(lambda: len(successor.owned) == 16, timeout=10)
            assert successor.consumer == "replica-1"
        finally:
            await stop(successor, task)

    asyncio.run(scenario())
    redis.Redis.from_url(REDIS_URL).flushdb()


def test_a_registration_is_superseded_only_by_proof_its_process_is_gone():
    import subprocess
    import sys

    me = ProcessIdentity.current()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    gone = {**me.as_dict(), "instance": "old", "pid": int(finished.stdout)}
    assert me.supersedes(gone)  # same host and pid namespace, that pid has exited
    assert me.supersedes({**me.as_dict(), "instance": "old"})  # our own pid: the old holder is dead
    assert not me.supersedes({**me.as_dict(), "instance": "old", "pid": 1})  # pid 1 lives
    assert not me.supersedes({**gone, "host": "elsewhere"})  # another host: only the lease can tell
    assert not me.supersedes({**gone, "pid_namespace": "pid:[1]"})  # another container's pid 1 is not ours


def test_db_inbox_consumer_name_is_never_shared_by_two_live_processes(app_db):
    from datetime import timedelta

    from crm.conversations.models import InboxConsumer
    from crm.db import unit_of_work

    first = DbInbox(FlakyBot(), consumer="replica-1", lease_s=30)
    assert first._register("replica-1")
    twin = DbInbox(FlakyBot(), consumer="replica-1", lease_s=30)
    twin.identity = other_host()
    assert not twin._register("replica-1")  # held by a live process

    async def start_twin():  # waits a little for the holder to lapse, then runs under a name of its own
        return await register_name(lambda n: asyncio.to_thread(twin._register, n), "replica-1", twin.identity,
                                   wait_s=0.3)
    assert asyncio.run(start_twin()).startswith("replica-1~")
    with unit_of_work() as session:  # the first process stops showing itself alive
        session.get(InboxConsumer, "replica-1").seen_at -= timedelta(seconds=31)
    successor = DbInbox(FlakyBot(), consumer="replica-1", lease_s=30)
    successor.identity = other_host()
    assert successor._register("replica-1")


