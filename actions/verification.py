"""Asking for and checking order ownership (verify_form). Rules are in crm.verification.service."""
from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.context import GuardedAction, GuardedFormValidation, answer_to, latest_intent, latest_text, turn
from crm.contacts import extract_order_number
from crm.verification import service as verification
from crm.verification.service import Outcome

FLOW_BY_INTENT = {
    "track_order": "track", "return_item": "return", "refund_status": "refund",
    "cancel_order": "cancel", "change_shipping_address": "address",
}
VERIFIED_PREFIX = "verified:"


class ActionStartFlow(GuardedAction):
    """Remember which flow the shopper asked for; pick up an order number typed in the same message."""

    def name(self) -> str:
        return "action_start_flow"

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]):
        wanted: dict[str, Any] = {"flow": FLOW_BY_INTENT.get(latest_intent(tracker), "track"),
                                  "pending_confirmation": None, "return_items": None, "return_reason": None,
                                  "new_address": None, "next_step": None}
        number = extract_order_number(latest_text(tracker))
        if number and number != tracker.get_slot("order_number"):
            wanted.update(order_number=number, contact=None)
        elif tracker.get_slot("order_number"):
            with turn(tracker) as ctx:  # a grant that expired means asking again
                if verification.granted_order(ctx.session, ctx.conversation_key,
                                              tracker.get_slot("order_number"), ctx.now) is None:
                    wanted["contact"] = None
        # Only changes become events: every event is replayed by Rasa on each later turn.
        return [SlotSet(name, value) for name, value in wanted.items() if tracker.get_slot(name) != value]


class ValidateVerifyForm(GuardedFormValidation):
    def name(self) -> str:
        return "validate_verify_form"

    async def extract_order_number(self, dispatcher, tracker, domain):
        return answer_to(tracker, "order_number")

    async def extract_contact(self, dispatcher, tracker, domain):
        return answer_to(tracker, "contact")

    def validate_order_number(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain):
        if value is None:  # reset by our own action, not an answer: nothing to say
            return {"order_number": None}
        with turn(tracker) as ctx:
            number = extract_order_number(str(value or ""))
            if not number:
                dispatcher.utter_message(text=ctx.texts("invalid_order_number"))
                return {"order_number": None}
            if verification.granted_order(ctx.session, ctx.conversation_key, number, ctx.now):
                return {"order_number": number, "contact": f"{VERIFIED_PREFIX}grant"}
            by_identity = verification.verify_with_identity(ctx.session, ctx.conversation_key, number,
                                                            ctx.customer_id, ctx.now, trusted_phone=ctx.trusted_phone)
            if by_identity.outcome is Outcome.VERIFIED:
                return {"order_number": number, "contact": f"{VERIFIED_PREFIX}identity"}
            return {"order_number": number}

    def validate_contact(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain):
        if value is None:  # reset by our own action, not an answer: nothing to say
            return {"contact": None}
        number = tracker.get_slot("order_number")
        with turn(tracker) as ctx:
            if str(value or "").startswith(VERIFIED_PREFIX) and verification.granted_order(
                    ctx.session, ctx.conversation_key, number, ctx.now):
                return {"contact": value}
            result = verification.verify_with_contact(ctx.session, ctx.conversation_key, number or "",
                                                      str(value or ""), ctx.now, client=ctx.client)
            if result.outcome is Outcome.VERIFIED:
                dispatcher.utter_message(text=ctx.texts("verified", order=number))
                return {"contact": f"{VERIFIED_PREFIX}{result.method}"}
            if result.outcome is Outcome.INCOMPLETE:
                dispatcher.utter_message(text=ctx.texts("invalid_contact"))
                return {"contact": None}
            if result.outcome is Outcome.RATE_LIMITED:
                dispatcher.utter_message(text=ctx.texts("rate_limited"))
                # fill both slots so the form ends; action_run_flow finds no grant and stays silent
                return {"contact": "rate_limited"}
            dispatcher.utter_message(text=ctx.texts("not_verified"))
            return {"order_number": None, "contact": None}


class ActionAskOrderNumber(GuardedAction):
    def name(self) -> str:
        return "action_ask_order_number"

    def respond(self, dispatcher, tracker, domain):
        with turn(tracker) as ctx:
            dispatcher.utter_message(text=ctx.texts("ask_order_number"))
        return []


class ActionAskContact(GuardedAction):
    def name(self) -> str:
        return "action_ask_contact"

    def respond(self, dispatcher, tracker, domain):
        with turn(tracker) as ctx:
            dispatcher.utter_message(text=ctx.texts("ask_contact", order=tracker.get_slot("order_number")))
        return []


class ActionSessionStart(GuardedAction):
    """A new Rasa session (after 60 idle minutes) ends the verified state: the shopper proves ownership again."""

    def name(self) -> str:
        return "action_session_start"

    def respond(self, dispatcher, tracker, domain):
        with turn(tracker) as ctx:
            verification.revoke_all(ctx.session, ctx.conversation_key)
        return [SessionStarted(), ActionExecuted("action_listen")]
