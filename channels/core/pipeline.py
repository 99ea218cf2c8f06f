"""The shared path of every message: identify, store, ask the bot (unless an agent has the
conversation), store and return the replies. Channels call `handle_inbound` and render what it returns.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from channels.core.messages import InboundMessage, OutboundMessage
from channels.core.rasa_client import BotUnavailable, RasaClient
from crm.config import get_settings
from crm.contacts import extract_order_number
from crm.conversations import service as conversations
from channels.core.outbound import Outbound
from crm.conversations.models import HANDOFF, INBOUND, OUTBOUND, Message
from crm.db import unit_of_work
from crm.handoff import service as handoff
from crm.language import conversation as conversation_language
from crm.language.conversation import MACHINE, LanguageTurn

log = logging.getLogger("crossdesk.pipeline")


@dataclass(frozen=True)
class Turn:
    conversation_key: str
    conversation_id: int
    customer_id: int | None
    mode: str
    language: str
    bot_text: str  # what Rasa gets: a tapped button's payload, or the text (in English when machine-translated)
    lang: LanguageTurn | None = None
    only_language_request: bool = False
    inbound_id: int | None = None  # the stored message this turn answers (actions read its trust from it)
    answered: bool = False  # a retry of a turn whose replies were already recorded


def client_key(msg: InboundMessage) -> str | None:
    """What the sender cannot rotate for free, for attempt limits: the IP the edge saw (REST, web), the
    WhatsApp phone (Meta-signed), the email From address."""
    if msg.client:
        return msg.client
    if msg.channel == "whatsapp":
        return f"whatsapp:{msg.sender_id}"
    if msg.channel == "email" and msg.metadata.get("from"):
        return f"email:{msg.metadata['from']}"
    return None


_NUMBER_CHOICE = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")


def _bot_text(session, conv, msg: InboundMessage) -> str:
    """A button tap sends its payload; a bare number answers numbered options (email, long lists); an order
    number the channel found elsewhere (an email's subject) joins the text when the text has none."""
    if msg.metadata.get("payload"):
        return str(msg.metadata["payload"])
    hint = msg.metadata.get("order_hint")
    if hint and not extract_order_number(msg.text):
        return f"{msg.text} {hint}"
    match = _NUMBER_CHOICE.match(msg.text)
    if match:
        last = session.scalar(select(Message).where(Message.conversation_id == conv.id, Message.direction == OUTBOUND)
                              .order_by(Message.id.desc()).limit(1))
        buttons = (last.payload or {}).get("buttons") if last is not None else None
        if buttons and 1 <= int(match.group(1)) <= len(buttons):
            return str(buttons[int(match.group(1)) - 1].get("payload") or msg.text)
    return msg.text


def _open_turn(msg: InboundMessage, translator=None) -> Turn:
    with unit_of_work() as session:
        conv = conversations.get_or_create(session, msg.channel, msg.sender_id, msg.received_at)
        ident = conversations.channel_identity(msg.channel, msg.sender_id, msg.metadata, msg.received_at)
        if ident.linkable:
            conversations.link_customer(session, conv, ident.identity)
        stored = msg.external_id is not None and session.scalar(
            select(Message).where(Message.conversation_id == conv.id, Message.direction == INBOUND,
                                  Message.provider_message_id == msg.external_id).limit(1))
        already = bool(stored)
        if not already:  # a retry after the bot was down must not add the message to the transcript twice
            # What the bot may rely on is decided here, per message, and kept apart from what the client sent.
            stored = conversations.record(session, conv, INBOUND, "shopper", msg.text,
                                          {"metadata": msg.metadata, "external_id": msg.external_id,
                                           "trust": conversations.message_trust(session, conv, ident),
                                           "client": client_key(msg)}, msg.received_at)
            stored.provider_message_id = msg.external_id
        lang = None
        if msg.text and not msg.metadata.get("payload"):  # a button tap says nothing about the language
            lang = conversation_language.decide(session, conv, msg.text, msg.channel, msg.sender_id, msg.metadata,
                                                translator.languages() if translator is not None else ())
        bot_text = _bot_text(session, conv, msg)
        if lang is not None and lang.translation == MACHINE and bot_text == msg.text:
            # NLU is native in twelve languages; others go through English, the shopper's words stay stored.
            english = translator.to_english(msg.text, lang.language)
            if english is not None:
                bot_text = english
                if not already:
                    stored.payload = {**stored.payload, "translation": {"en": english}}
        session.flush()
        request_only = lang is not None and lang.explicit and \
            conversation_language.only_a_language_request(msg.text, conversation_language.shop_languages())
        return Turn(conv.key, conv.id, conv.customer_id, conv.mode, conv.language, bot_text, lang, request_only,
                    stored.id, stored.answered_at is not None)


def _notice(conversation_id: int, key: str, **values) -> OutboundMessage:
    """A system message from the catalog in the conversation's language (not from the bot)."""
    from actions.render import Texts
    from crm.conversations.models import Conversation

    with unit_of_work() as session:
        conv = session.get(Conversation, conversation_id)
        if key == "handoff_already":
            values["minutes"] = handoff.expected_wait(session)
        return OutboundMessage(Texts(conv.language)(key, **values), author="system")


# Channels whose edge cannot answer an HTTP error to the shopper (REST and web chat enforce limits at the edge).
QUEUED_CHANNELS = {"whatsapp", "email"}


class Pipeline:
    def __init__(self, rasa: RasaClient, outbound: Outbound, rate_limiter=None, notice_limiter=None,
                 translator=None):
        self.rasa = rasa
        self.translator = translator  # crm.translation adapter: languages() and to_english(); None = native only
        self.outbound = outbound
        self.rate_limiter = rate_limiter
        self.notice_limiter = notice_limiter  # at most one "slow down" notice per window

    async def _limit_reply(self, msg: InboundMessage, turn: Turn) -> list[OutboundMessage] | None:
        """For queued channels: an over-long message or a flood gets a polite reply instead of the bot
        (the message itself is already stored: nothing is lost, an agent can still read it)."""
        if msg.channel not in QUEUED_CHANNELS:
            return None
        limit = get_settings().max_message_chars
        if len(msg.text) > limit:
            return [await run_in_threadpool(_notice, turn.conversation_id, "too_long", limit=limit)]
        if self.rate_limiter is not None and not await self.rate_limiter.allow(turn.conversation_key):
            if self.notice_limiter is not None and await self.notice_limiter.allow(turn.conversation_key):
                return [await run_in_threadpool(_notice, turn.conversation_id, "slow_down")]
            return []
        return None

    async def handle_inbound(self, msg: InboundMessage) -> list[OutboundMessage]:
        """Store first (nothing is lost), then answer. Raises BotUnavailable if Rasa is down."""
        turn = await run_in_threadpool(_open_turn, msg, self.translator)
        if turn.answered:  # a retry (crash, timeout, provider redelivery): what was recorded, never Rasa again
            return await self.outbound.resume(turn.inbound_id)
        limited = await self._limit_reply(msg, turn)
        if limited is not None:
            replies = limited
        elif not msg.text:  # media, locations, reactions: stored; text-only bot says so for media
            replies = [await run_in_threadpool(_notice, turn.conversation_id, "text_only")] \
                if msg.metadata.get("unsupported_media") else []
        elif turn.mode == HANDOFF:
            replies = [await run_in_threadpool(_notice, turn.conversation_id, "handoff_already")]
        elif turn.only_language_request:  # "English please": confirm in that language, nothing for the bot
            replies = [await run_in_threadpool(_notice, turn.conversation_id, "language_switched")]
        else:
            metadata = {"channel": msg.channel, "language": turn.language, "inbound_id": turn.inbound_id}
            raw = await self.rasa.send(turn.conversation_key, turn.bot_text, metadata)
            replies = [OutboundMessage.from_rasa(r) for r in raw if r.get("text") or r.get("buttons") or r.get("custom")]
        if turn.lang is not None and turn.lang.newly_unavailable:
            replies = [await run_in_threadpool(_notice, turn.conversation_id, "translation_unavailable"), *replies]
        await self.outbound.deliver(turn.conversation_id, replies, reply_to=turn.inbound_id)
        return replies


__all__ = ["Pipeline", "BotUnavailable"]
