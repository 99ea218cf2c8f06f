"""The shared path of every message: identify, store, ask the bot (unless an agent has the
conversation), store and return the replies. Channels call `handle_inbound` and render what it returns.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from channels.core.messages import InboundMessage, OutboundMessage
from channels.core.rasa_client import BotUnavailable, RasaClient
from crm.conversations import service as conversations
from channels.core.outbound import Outbound
from crm.conversations.models import HANDOFF, INBOUND
from crm.db import unit_of_work
from crm.handoff import service as handoff

log = logging.getLogger("crossdesk.pipeline")


@dataclass(frozen=True)
class Turn:
    conversation_key: str
    conversation_id: int
    customer_id: int | None
    mode: str
    language: str


def _open_turn(msg: InboundMessage) -> Turn:
    with unit_of_work() as session:
        conv = conversations.get_or_create(session, msg.channel, msg.sender_id, msg.received_at)
        conversations.link_customer(session, conv, conversations.trusted_identity(msg.metadata))
        conversations.record(session, conv, INBOUND, "shopper", msg.text,
                             {"metadata": msg.metadata, "external_id": msg.external_id}, msg.received_at)
        session.flush()
        return Turn(conv.key, conv.id, conv.customer_id, conv.mode, conv.language)


def _holding_reply(conversation_id: int) -> OutboundMessage:
    from crm.conversations.models import Conversation
    from actions.render import Texts

    with unit_of_work() as session:
        conv = session.get(Conversation, conversation_id)
        minutes = handoff.expected_wait(session)
        return OutboundMessage(Texts(conv.language)("handoff_already", minutes=minutes), author="system")


def _text_only_reply(conversation_id: int) -> OutboundMessage:
    from crm.conversations.models import Conversation
    from actions.render import Texts

    with unit_of_work() as session:
        conv = session.get(Conversation, conversation_id)
        return OutboundMessage(Texts(conv.language)("text_only"), author="system")


class Pipeline:
    def __init__(self, rasa: RasaClient, outbound: Outbound):
        self.rasa = rasa
        self.outbound = outbound

    async def handle_inbound(self, msg: InboundMessage) -> list[OutboundMessage]:
        """Store first (nothing is lost), then answer. Raises BotUnavailable if Rasa is down."""
        turn = await run_in_threadpool(_open_turn, msg)
        if not msg.text:  # media, locations, reactions: stored; text-only bot says so for media
            replies = [await run_in_threadpool(_text_only_reply, turn.conversation_id)] \
                if msg.metadata.get("unsupported_media") else []
        elif turn.mode == HANDOFF:
            replies = [await run_in_threadpool(_holding_reply, turn.conversation_id)]
        else:
            metadata = {"channel": msg.channel, "language": turn.language}
            raw = await self.rasa.send(turn.conversation_key, msg.text, metadata)
            replies = [OutboundMessage.from_rasa(r) for r in raw if r.get("text") or r.get("buttons") or r.get("custom")]
        await self.outbound.deliver(turn.conversation_id, replies)
        return replies


__all__ = ["Pipeline", "BotUnavailable"]
