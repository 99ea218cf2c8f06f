"""The durable inbox: order per conversation, nothing lost while the bot is down, nothing answered twice."""
from __future__ import annotations

import asyncio
import os
import uuid
from datetime import datetime, timezone

import redis

from channels.core.inbox import DbInbox, RedisInbox
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


def test_redis_takes_over_a_stopped_consumers_entries_but_never_a_live_ones():
    redis.Redis.from_url(REDIS_URL).flushdb()

    class SlowBot(FlakyBot):
        async def __call__(self, msg):
            await asyncio.sleep(1.5)
            self.handled.append(msg)

    async def scenario():
        live_bot, dead_bot, heir_bot = SlowBot(), FlakyBot(), FlakyBot()
        dead_bot.down = True
        live = RedisInbox(REDIS_URL, live_bot, consumer="live", maintain_s=0.1, claim_idle_ms=500)
        dead = RedisInbox(REDIS_URL, dead_bot, consumer="dead", maintain_s=0.1, claim_idle_ms=500)
        dead_task = asyncio.create_task(dead.run())
        await dead.accept(message("c21", 1))
        await wait_until(lambda: dead_bot.refused >= 1)
        dead_task.cancel()  # it stops without acknowledging
        await dead.aclose()
        live_task = asyncio.create_task(live.run())
        await live.accept(message("c20", 1))
        await wait_until(lambda: bool(live._inflight))
        heir = RedisInbox(REDIS_URL, heir_bot, consumer="heir", maintain_s=0.1, claim_idle_ms=500)
        heir_task = asyncio.create_task(heir.run())
        try:
            await wait_until(lambda: "c21" in [m.sender_id for m in heir_bot.handled + live_bot.handled])
            await wait_until(lambda: len(live_bot.handled) == 1)
            # the dead consumer's entry was taken over; the live consumer's slow one stayed its own
            assert "c20" not in [m.sender_id for m in heir_bot.handled]
            assert sorted(m.sender_id for m in heir_bot.handled + live_bot.handled) == ["c20", "c21"]
            await asyncio.sleep(0.3)
            await heir.maintain()
            assert await heir.redis.xlen(RedisInbox.STREAM) <= 1  # done entries are trimmed
        finally:
            for task in (live_task, heir_task):
                task.cancel()
            await live.aclose()
            await heir.aclose()

    asyncio.run(scenario())
    redis.Redis.from_url(REDIS_URL).flushdb()
