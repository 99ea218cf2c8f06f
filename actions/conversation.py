"""Small talk, fallback and handoff."""
from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from actions.buttons import menu_buttons
from actions.context import GuardedAction, latest_intent, latest_text, turn
from crm.handoff import service as handoff

SMALLTALK_KEYS = {"greet": "greet", "goodbye": "goodbye", "thanks": "thanks", "bot_challenge": "bot_challenge"}
MENU_AFTER = {"greet", "out_of_scope", "inform"}


class ActionSmalltalk(GuardedAction):
    def name(self) -> str:
        return "action_smalltalk"

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain):
        intent = latest_intent(tracker)
        with turn(tracker) as ctx:
            t = ctx.texts
            if intent == "out_of_scope" and consecutive_fallbacks(tracker) >= 2:
                offer_human(dispatcher, t)
                return []
            key = SMALLTALK_KEYS.get(intent) or ("inform_without_request" if intent == "inform" else "out_of_scope")
            buttons = menu_buttons(t) if intent in MENU_AFTER else []
            dispatcher.utter_message(text=t(key), buttons=buttons)
        return []


def offer_human(dispatcher: CollectingDispatcher, t) -> None:
    dispatcher.utter_message(text=t("fallback_offer_human"),
                             buttons=[{"title": t("button_yes"), "payload": "/talk_to_human"},
                                      {"title": t("button_no"), "payload": "/greet"}])


MISUNDERSTOOD = {"nlu_fallback", "out_of_scope"}


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many of the shopper's latest messages in a row the bot could not help with."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        if ((event.get("parse_data") or {}).get("intent") or {}).get("name") in MISUNDERSTOOD:
            count += 1
        else:
            break
    return count


class ActionDefaultFallback(GuardedAction):
    """First miss: rephrase + menu. Second miss in a row: offer a person."""

    def name(self) -> str:
        return "action_default_fallback"

    def respond(self, dispatcher, tracker, domain):
        with turn(tracker) as ctx:
            t = ctx.texts
            if consecutive_fallbacks(tracker) >= 2:
                offer_human(dispatcher, t)
            else:
                dispatcher.utter_message(text=t("fallback"), buttons=menu_buttons(t))
        # keep the misunderstood message out of the rule history so rules keep matching
        return [UserUtteranceReverted()] if latest_intent(tracker) != "nlu_fallback" else []


class ActionHandoff(GuardedAction):
    """Record a handoff request; the app stops forwarding this conversation to the bot."""

    def name(self) -> str:
        return "action_handoff"

    def respond(self, dispatcher, tracker, domain):
        with turn(tracker) as ctx:
            conv = ctx.conversation
            if conv is None:  # only the app creates conversations; a sender it does not know gets no ticket
                dispatcher.utter_message(text=ctx.texts("internal_error"))
                return []
            reason = "repeated_fallback" if consecutive_fallbacks(tracker) else "asked"
            ticket = handoff.request_handoff(ctx.session, conv, reason, latest_text(tracker), ctx.now)
            key = "handoff_already" if ticket.already_open else "handoff"
            dispatcher.utter_message(text=ctx.texts(key, minutes=ticket.expected_wait_minutes))
        return [SlotSet("pending_confirmation", None)]
