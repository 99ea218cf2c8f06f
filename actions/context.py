"""What every action needs: the time, a unit of work, the conversation and its language."""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher

from crm.config import get_settings
from crm.conversations import service as conversations
from crm.db import unit_of_work
from crm.i18n.catalog import Texts


def now() -> datetime:
    """Current time; CROSSDESK_NOW (Settings.pinned_now) pins it in tests so seeded dates line up."""
    pinned = get_settings().pinned_now
    return pinned if pinned is not None else datetime.now(timezone.utc)


@dataclass
class TurnContext:
    session: object
    conversation_key: str
    customer_id: int | None  # only when the message being answered carries a trusted identity (proof)
    texts: Texts
    now: datetime
    trusted_phone: str | None = None  # the WhatsApp sender's phone, on a message from the signed webhook
    client: str | None = None  # what attempt limits count besides the conversation (IP, phone, From)
    conversation: object | None = None


def inbound_id(tracker: Tracker) -> int | None:
    """Which stored message this turn answers: the app passes its id in the message metadata (Rasa takes
    messages only from the app, and this server only calls from Rasa — see docs/architecture.md)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            value = (event.get("metadata") or {}).get("inbound_id")
            return value if isinstance(value, int) and not isinstance(value, bool) else None
    return None


@contextmanager
def turn(tracker: Tracker):
    """One action run = one unit of work against the shop database.

    Trust comes from the app's own records only: the conversation the app created for this sender id and
    the trust the app stored on the message being answered. A sender id's shape ("whatsapp:+49…") or a
    conversation's history proves nothing; an unknown conversation gets no trust at all."""
    with unit_of_work() as session:
        conv = conversations.find_by_key(session, tracker.sender_id)
        message = conversations.inbound_message(session, conv, inbound_id(tracker)) if conv is not None else None
        payload = (message.payload or {}) if message is not None else {}
        trust = payload.get("trust") or {}
        yield TurnContext(session, tracker.sender_id, trust.get("customer_id"),
                          Texts(conv.language if conv is not None else None), now(), trust.get("phone"),
                          payload.get("client"), conv)


def latest_text(tracker: Tracker) -> str:
    return (tracker.latest_message or {}).get("text") or ""


def latest_intent(tracker: Tracker) -> str | None:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


# Intents that interrupt a form instead of being read as the answer to its question.
INTERRUPTING_INTENTS = {"talk_to_human"}


def answer_to(tracker: Tracker, slot: str) -> dict[str, Any]:
    """While a form asks for `slot`, whatever the shopper typed is the candidate answer (validated by
    the services), unless it asks for a person."""
    if tracker.get_slot("requested_slot") != slot or latest_intent(tracker) in INTERRUPTING_INTENTS:
        return {}
    text = latest_text(tracker).strip()
    return {slot: text} if text else {}


log = logging.getLogger("crossdesk.actions")


def _apologise(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    log.exception("action failed for %s", tracker.sender_id)
    try:
        with turn(tracker) as ctx:
            dispatcher.utter_message(text=ctx.texts("internal_error"))
    except Exception:  # the database itself may be what failed
        dispatcher.utter_message(text=Texts(None)("internal_error"))


class GuardedAction(Action, ABC):
    """An action whose failure becomes an apology to the shopper (and a logged trace), not silence."""

    @abstractmethod
    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        """What the action does; exceptions are turned into an apology by `run`."""

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        try:
            return self.respond(dispatcher, tracker, domain)
        except Exception:
            _apologise(dispatcher, tracker)
            return []


class GuardedFormValidation(FormValidationAction, ABC):
    """Form validation that apologises and re-asks instead of failing the turn."""

    @abstractmethod
    def name(self) -> str:
        """The validate_<form> action name."""

    async def run(self, dispatcher, tracker, domain):
        try:
            return await super().run(dispatcher, tracker, domain)
        except Exception:
            _apologise(dispatcher, tracker)
            return []
