"""The shared path of every message: identify, store, ask the bot (unless an agent has the
conversation), store and return the replies. Channels call `handle_inbound` and render what it returns.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from channels.core.choices import resolve_numbered_choice
from channels.core.limits import TOO_FAST, TOO_LONG, InputLimits
from channels.core.messages import InboundMessage, OutboundMessage
from channels.core.rasa_client import BotUnavailable, RasaClient
from crm.conversations import service as conversations
from channels.core.outbound import Outbound
from crm.conversations.models import HANDOFF, INBOUND, Conversation, Message
from crm.db import unit_of_work
from crm.handoff import service as handoff
from crm.i18n import conversation_language
from crm.i18n.conversation_language import MACHINE, LanguageTurn

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


def _bot_text(msg: InboundMessage, last_buttons: list[dict] | None) -> str:
    """What Rasa reads: a tapped button's payload; an option picked by typing its number or title; the text
    with whatever the channel's parser asked the bot to read along (an email's subject: `bot_hint`)."""
    if msg.metadata.get("payload"):
        return str(msg.metadata["payload"])
    chosen = resolve_numbered_choice(msg.text, last_buttons)
    if chosen:
        return chosen
    hint = msg.metadata.get("bot_hint")
    return f"{msg.text} {hint}" if isinstance(hint, str) and hint.strip() else msg.text


@dataclass(frozen=True)
class _Stored:
    conversation_id: int
    inbound_id: int
    answered: bool
    language_state: object | None
    last_buttons: list[dict] | None


def _store_inbound(msg: InboundMessage) -> _Stored:
    """Transaction 1: the conversation, who sent it and the message itself — stored before anything else."""
    with unit_of_work() as session:
        conv = conversations.get_or_create(session, msg.channel, msg.sender_id, msg.received_at)
        ident = conversations.channel_identity(msg.channel, msg.sender_id, msg.metadata, msg.received_at)
        if ident.linkable:
            conversations.link_customer(session, conv, ident.identity)
        stored = conversations.find_inbound(session, conv, msg.external_id)
        if stored is None:  # a retry (bot down, crash) must not add the message to the transcript twice
            # What the bot may rely on is decided here, per message, and kept apart from what the client sent.
            stored = conversations.record(session, conv, INBOUND, "shopper", msg.text,
                                          {"metadata": msg.metadata, "external_id": msg.external_id,
                                           "trust": conversations.message_trust(session, conv, ident),
                                           "client": client_key(msg)}, msg.received_at)
            stored.provider_message_id = msg.external_id
        session.flush()
        wants_language = bool(msg.text) and not msg.metadata.get("payload")  # a tap says nothing of language
        state = conversation_language.read_state(session, conv, msg.channel, msg.sender_id, msg.metadata) \
            if wants_language and stored.answered_at is None else None
        return _Stored(conv.id, stored.id, stored.answered_at is not None, state,
                       conversations.last_buttons(session, conv, before_id=stored.id))


def _finish_turn(stored: _Stored, msg: InboundMessage, decision, english: str | None, bot_text: str) -> Turn:
    """Transaction 2: the language decision and the English the NLU reads, recorded."""
    with unit_of_work() as session:
        conv = session.get(Conversation, stored.conversation_id)
        lang = conversation_language.apply(session, conv, decision) if decision is not None else None
        if english is not None:
            inbound = session.get(Message, stored.inbound_id)
            inbound.payload = {**(inbound.payload or {}), "translation": {"en": english}}
        request_only = lang is not None and lang.explicit and \
            conversation_language.only_a_language_request(msg.text, conversation_language.shop_languages())
        return Turn(conv.key, conv.id, conv.customer_id, conv.mode, conv.language, bot_text, lang, request_only,
                    stored.inbound_id, False)


async def open_turn(msg: InboundMessage, translator=None, translate: bool = True) -> Turn:
    """Store the message, then decide its language and translate it with no transaction open (detection and
    translation are slow), then record the decision. `translate=False`: a message over the channel's
    length limit, which the bot will not read — never worth minutes of machine translation."""
    stored = await run_in_threadpool(_store_inbound, msg)
    if stored.answered:
        return Turn("", stored.conversation_id, None, "", "", "", inbound_id=stored.inbound_id, answered=True)
    bot_text = _bot_text(msg, stored.last_buttons)
    decision, english = None, None
    if stored.language_state is not None:
        translatable = await run_in_threadpool(translator.languages) if translator is not None else ()
        decision = await run_in_threadpool(conversation_language.analyse, stored.language_state, msg.text,
                                           translatable)
        if decision.turn.translation == MACHINE and bot_text == msg.text and translate:
            # NLU is native in twelve languages; others go through English, the shopper's words stay stored.
            english = await run_in_threadpool(translator.to_english, msg.text, decision.language)
            bot_text = english or bot_text
    return await run_in_threadpool(_finish_turn, stored, msg, decision, english, bot_text)


def _notice(conversation_id: int, key: str, **values) -> OutboundMessage:
    """A system message from the catalog in the conversation's language (not from the bot)."""
    from crm.i18n.catalog import Texts
    from crm.conversations.models import Conversation

    with unit_of_work() as session:
        conv = session.get(Conversation, conversation_id)
        if key == "handoff_already":
            values["minutes"] = handoff.expected_wait(session)
        return OutboundMessage(Texts(conv.language)(key, **values), author="system")


class Pipeline:
    def __init__(self, rasa: RasaClient, outbound: Outbound, limits: InputLimits | None = None, translator=None):
        self.rasa = rasa
        self.translator = translator  # crm.i18n.translation adapter: languages() and to_english(); None = native only
        self.outbound = outbound
        self.limits = limits

    def _within_length(self, msg: InboundMessage) -> bool:
        limits = self.limits.channels.get(msg.channel) if self.limits is not None else None
        return limits is None or len(msg.text) <= limits.max_message_chars

    async def _limit_reply(self, msg: InboundMessage, turn: Turn) -> list[OutboundMessage] | None:
        """Channels whose edge cannot refuse (channels.core.limits): an over-long message or a flood gets a
        polite reply instead of the bot (the message is already stored: an agent can still read it)."""
        if self.limits is None or msg.channel not in self.limits.channels or self.limits[msg.channel].refused_at_edge:
            return None
        refused = await self.limits.check(msg.channel, msg.text, turn.conversation_key, msg.client)
        if refused == TOO_LONG:
            limit = self.limits[msg.channel].max_message_chars
            return [await run_in_threadpool(_notice, turn.conversation_id, "too_long", limit=limit)]
        if refused == TOO_FAST:
            if await self.limits.notice_allowed(turn.conversation_key):
                return [await run_in_threadpool(_notice, turn.conversation_id, "slow_down")]
            return []
        return None

    async def handle_inbound(self, msg: InboundMessage) -> list[OutboundMessage]:
        """Store first (nothing is lost), then answer. Raises BotUnavailable if Rasa is down."""
        turn = await open_turn(msg, self.translator, translate=self._within_length(msg))
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
