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
        os.environ["CROSSDESK_INBOX_CONSUMER"] = consumer
        try:
            crashed_bot = FlakyBot()
            crashed_bot.down = True
            first = RedisInbox(REDIS_URL, crashed_bot)
            worker = asyncio.create_task(first.run())
            await first.accept(message("c7", 1))
            await wait_until(lambda: crashed_bot.refused >= 1)
            worker.cancel()  # the app dies before acknowledging
            await first.aclose()
            bot = FlakyBot()
            second = RedisInbox(REDIS_URL, bot)
            worker = asyncio.create_task(second.run())
            try:
                await wait_until(lambda: len(bot.handled) == 1)
            finally:
                worker.cancel()
                await second.aclose()
        finally:
            os.environ.pop("CROSSDESK_INBOX_CONSUMER", None)

    asyncio.run(scenario())
    redis.Redis.from_url(REDIS_URL).flushdb()
