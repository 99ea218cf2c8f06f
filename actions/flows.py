"""The self-service flows after verification: tracking, refunds, cancellation, address change, returns.

Each action asks a crm service and renders its answer; no business rule is decided here.
"""
from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.buttons import yes_no_buttons
from actions.context import GuardedAction, GuardedFormValidation, answer_to, TurnContext, latest_intent, turn
from crm.contacts import AddressError, parse_address
from crm.i18n.catalog import Texts, refund_method
from crm.orders import service as orders
from crm.orders.service import AddressChangeOutcome, CancelOutcome
from crm.returns import service as returns
from crm.returns.service import Reason
from crm.shipments import models as shipment_codes
from crm.shipments.service import tracking_report
from crm.verification import service as verification


def verified_order(ctx: TurnContext, tracker: Tracker):
    return verification.granted_order(ctx.session, ctx.conversation_key, tracker.get_slot("order_number"), ctx.now)


# --- rendering ---------------------------------------------------------------------------------------
def render_tracking(t: Texts, order, now) -> list[str]:
    r = tracking_report(order, now)
    status = t(f"status.{r.order_status}")
    if r.order_status == "cancelled":
        return [t("track_cancelled", order=r.order_number)]
    if not r.shipped:
        return [t("track_not_shipped", order=r.order_number, status=status, ship_date=t.day(r.expected_ship_date))]
    lines = [t("track_status", order=r.order_number, status=status, carrier=r.carrier, tracking=r.tracking_number)]
    if r.last_event:
        lines.append(t("track_last_event", event=t(f"event.{r.last_event.code}"), place=r.last_event.location,
                       time=t.local_time(r.last_event.local_time)))
    if r.delivered_at:
        lines.append(t("track_delivered", delivered=t.day(r.delivered_at.date())))
    if r.duties_amount is not None:
        lines.append(t("track_duties", amount=t.money(r.duties_amount, r.duties_currency), url=r.duties_payment_url))
    elif r.last_event and r.last_event.code == shipment_codes.EXCEPTION:
        lines.append(t("track_exception", detail=r.last_event.description or t("event.exception")))
    elif r.delayed:
        lines.append(t("track_delayed"))
    if r.next_milestone:
        lines.append(t("track_next", next=t(f"event.{r.next_milestone}")))
    if r.eta:
        lines.append(t("track_eta", eta=t.day(r.eta)))
    lines.append(t("track_link", url=r.tracking_url))
    return [" ".join(lines[:1] + lines[1:2])] + lines[2:] if len(lines) > 1 else lines


def render_refunds(t: Texts, ctx: TurnContext, order) -> list[str]:
    views = returns.refund_status(ctx.session, order)
    if not views:
        return [t("refund_none", order=order.number)]
    out = []
    for v in views:
        line = t("refund_line", amount=t.money(v.amount, v.currency), method=refund_method(t, v.method),
                 status=t(f"refund_status_names.{v.status}"), updated=t.day(v.last_update.date()))
        if v.status == "pending" and v.rma_number:
            line += " " + t("refund_waiting_parcel", rma=v.rma_number)
        elif v.expected_by:
            line += " " + t("refund_expected", date=t.day(v.expected_by))
        out.append(line)
    return out


INELIGIBLE_KEYS = {
    Reason.NOT_DELIVERED: "return_not_delivered", Reason.CANCELLED: "return_cancelled",
    Reason.WINDOW_CLOSED: "return_window_closed", Reason.FINAL_SALE: "return_final_sale",
    Reason.ALREADY_RETURNED: "return_already_returned", Reason.NO_POLICY: "return_no_policy",
}


class ActionRunFlow(GuardedAction):
    """After verification: do what the shopper asked for (slot `flow`)."""

    def name(self) -> str:
        return "action_run_flow"

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]):
        with turn(tracker) as ctx:
            order = verified_order(ctx, tracker)
            if order is None:  # verification failed or was rate limited; the form already said why
                return [SlotSet("flow", None)]
            t, flow = ctx.texts, tracker.get_slot("flow")
            if flow == "refund":
                for text in render_refunds(t, ctx, order):
                    dispatcher.utter_message(text=text)
                return []
            if flow == "cancel":
                return self._cancel(dispatcher, t, order)
            if flow == "address":
                return self._address(dispatcher, t, order)
            if flow == "return":
                return self._return(dispatcher, ctx, order)
            for text in render_tracking(t, order, ctx.now):
                dispatcher.utter_message(text=text)
            return []

    @staticmethod
    def _cancel(dispatcher, t: Texts, order):
        blocked = orders.can_cancel(order)
        if blocked is CancelOutcome.ALREADY_CANCELLED:
            dispatcher.utter_message(text=t("cancel_already_cancelled", order=order.number))
            return []
        if blocked is CancelOutcome.ALREADY_SHIPPED:
            dispatcher.utter_message(text=t("cancel_too_late", order=order.number),
                                     buttons=[{"title": t("cancel_offer_return"), "payload": "/return_item"}])
            return []
        dispatcher.utter_message(text=t("cancel_confirm", order=order.number, total=t.money(order.total, order.currency)),
                                 buttons=yes_no_buttons(t))
        return [SlotSet("pending_confirmation", "cancel")]

    @staticmethod
    def _address(dispatcher, t: Texts, order):
        blocked = orders.can_change_address(order)
        if blocked is AddressChangeOutcome.CANCELLED:
            dispatcher.utter_message(text=t("address_cancelled", order=order.number))
            return []
        if blocked is AddressChangeOutcome.ALREADY_SHIPPED:
            url = order.shipments[-1].tracking_url if order.shipments else ""
            dispatcher.utter_message(text=t("address_too_late", order=order.number, url=url))
            return []
        dispatcher.utter_message(text=t("address_current", order=order.number,
                                        address=orders.current_address(order).one_line()))
        return [SlotSet("new_address", None), SlotSet("next_step", "address_form")]

    @staticmethod
    def _return(dispatcher, ctx: TurnContext, order):
        t = ctx.texts
        eligibility = returns.check_eligibility(ctx.session, order, ctx.now)
        if not eligibility.eligible:
            dispatcher.utter_message(text=t(INELIGIBLE_KEYS[eligibility.reason], order=order.number,
                                            deadline=t.day(eligibility.deadline) if eligibility.deadline else "",
                                            days=eligibility.window_days))
            return []
        if eligibility.final_sale_lines:
            dispatcher.utter_message(text=t("return_final_sale_note",
                                            items=", ".join(ln.title for ln in eligibility.final_sale_lines)))
        events = [SlotSet("return_items", None), SlotSet("return_reason", None), SlotSet("next_step", "return_form")]
        if len(eligibility.lines) == 1:
            events[0] = SlotSet("return_items", "all")
        return events


# --- returns form ------------------------------------------------------------------------------------
def parse_item_choice(text: str, line_count: int) -> list[int] | None:
    """'2', 'item 1 and 3', 'all' → 0-based indexes; None if nothing usable."""
    text = text.lower()
    if re.search(r"\b(all|everything|both|todo|todos|tudo|tutti|tutto|tous|toutes|alles|beide|allemaal|semua|hepsi|"
                 r"ikisi|الكل|كلها|كله)\b|全部|都要|すべて|全て|両方", text):
        return list(range(line_count))
    picks = sorted({int(n) - 1 for n in re.findall(r"\b(\d{1,2})\b", text) if 1 <= int(n) <= line_count})
    return picks or None


class ValidateReturnForm(GuardedFormValidation):
    def name(self) -> str:
        return "validate_return_form"

    async def extract_return_items(self, dispatcher, tracker, domain):
        return answer_to(tracker, "return_items")

    async def extract_return_reason(self, dispatcher, tracker, domain):
        return answer_to(tracker, "return_reason")

    def validate_return_items(self, value, dispatcher, tracker, domain):
        if value is None:  # reset by our own action, not an answer: nothing to say
            return {"return_items": None}
        if value == "all":
            return {"return_items": "all"}
        with turn(tracker) as ctx:
            order = verified_order(ctx, tracker)
            lines = returns.check_eligibility(ctx.session, order, ctx.now).lines if order else []
            picks = parse_item_choice(str(value), len(lines))
            if not picks:
                # a title typed instead of a number
                picks = [i for i, it in enumerate(lines) if it.line.title.lower() in str(value).lower()] or None
            if not picks:
                dispatcher.utter_message(text=ctx.texts("invalid_return_items"))
                return {"return_items": None}
            return {"return_items": ",".join(str(lines[i].line.id) for i in picks)}

    def validate_return_reason(self, value, dispatcher, tracker, domain):
        if value is None:  # reset by our own action, not an answer: nothing to say
            return {"return_reason": None}
        text = str(value or "").strip()
        if len(text) < 2:
            with turn(tracker) as ctx:
                dispatcher.utter_message(text=ctx.texts("invalid_return_reason"))
            return {"return_reason": None}
        return {"return_reason": text[:500]}


class ActionAskReturnItems(GuardedAction):
    def name(self) -> str:
        return "action_ask_return_items"

    def respond(self, dispatcher, tracker, domain):
        with turn(tracker) as ctx:
            order = verified_order(ctx, tracker)
            eligibility = returns.check_eligibility(ctx.session, order, ctx.now)
            t = ctx.texts
            buttons = [{"title": f"{i}. {it.line.title}" + (f" ×{it.qty}" if it.qty > 1 else ""), "payload": str(i)}
                       for i, it in enumerate(eligibility.lines, start=1)]
            buttons.append({"title": t("return_all_items"), "payload": "all"})
            dispatcher.utter_message(text=t("ask_return_items", deadline=t.day(eligibility.deadline)), buttons=buttons)
        return []


class ActionAskReturnReason(GuardedAction):
    def name(self) -> str:
        return "action_ask_return_reason"

    def respond(self, dispatcher, tracker, domain):
        with turn(tracker) as ctx:
            reasons = ctx.texts.raw("reasons")
            dispatcher.utter_message(text=ctx.texts("ask_return_reason"),
                                     buttons=[{"title": r, "payload": r} for r in reasons])
        return []


class ActionSubmitReturn(GuardedAction):
    def name(self) -> str:
        return "action_submit_return"

    def respond(self, dispatcher, tracker, domain):
        with turn(tracker) as ctx:
            t, order = ctx.texts, verified_order(ctx, tracker)
            if order is None:
                return []
            chosen = tracker.get_slot("return_items")
            line_ids = None if chosen in (None, "all") else [int(x) for x in chosen.split(",")]
            try:
                rma = returns.create_return(ctx.session, order, line_ids, tracker.get_slot("return_reason") or "",
                                            ctx.now)
                quote = returns.refund_quote(ctx.session, order, rma)
            except returns.ReturnNotAllowed as exc:
                dispatcher.utter_message(text=t(INELIGIBLE_KEYS[exc.reason], order=order.number, deadline="", days=""))
                return [SlotSet("return_items", None), SlotSet("return_reason", None)]
            items = ", ".join(f"{it.order_line.title}" + (f" ×{it.qty}" if it.qty > 1 else "") for it in rma.items)
            dispatcher.utter_message(text=t("return_created", rma=rma.rma_number, items=items, label=rma.label_url))
            carrier = quote.return_carrier or t("return_any_carrier")
            dispatcher.utter_message(text=t("return_instructions", carrier=carrier, address=quote.return_address))
            estimate = t("return_refund_estimate", amount=t.money(quote.amount, quote.currency),
                         method=refund_method(t, quote.method), days=quote.settlement_days)
            if quote.shipping_fee is not None:
                estimate += " " + t("return_shipping_fee", fee=t.money(quote.shipping_fee, quote.currency))
            dispatcher.utter_message(text=estimate)
        return [SlotSet("return_items", None), SlotSet("return_reason", None), SlotSet("flow", None),
                SlotSet("next_step", None)]


# --- address form ------------------------------------------------------------------------------------
class ValidateAddressForm(GuardedFormValidation):
    def name(self) -> str:
        return "validate_address_form"

    async def extract_new_address(self, dispatcher, tracker, domain):
        return answer_to(tracker, "new_address")

    def validate_new_address(self, value, dispatcher, tracker, domain):
        if value is None:  # reset by our own action, not an answer: nothing to say
            return {"new_address": None}
        with turn(tracker) as ctx:
            order = verified_order(ctx, tracker)
            if order is None:
                return {"new_address": None}
            try:
                parse_address(str(value), order.ship_country)
            except AddressError as exc:
                dispatcher.utter_message(text=ctx.texts(f"invalid_address.{exc.code}", country=order.ship_country))
                return {"new_address": None}
            return {"new_address": str(value)}


class ActionAskNewAddress(GuardedAction):
    def name(self) -> str:
        return "action_ask_new_address"

    def respond(self, dispatcher, tracker, domain):
        with turn(tracker) as ctx:
            order = verified_order(ctx, tracker)
            dispatcher.utter_message(text=ctx.texts("ask_new_address", country=order.ship_country if order else ""))
        return []


class ActionProposeAddress(GuardedAction):
    def name(self) -> str:
        return "action_propose_address"

    def respond(self, dispatcher, tracker, domain):
        with turn(tracker) as ctx:
            order = verified_order(ctx, tracker)
            if order is None:
                return []
            address = parse_address(tracker.get_slot("new_address") or "", order.ship_country)
            dispatcher.utter_message(text=ctx.texts("address_confirm", order=order.number, address=address.one_line()),
                                     buttons=yes_no_buttons(ctx.texts))
        return [SlotSet("pending_confirmation", "address"), SlotSet("next_step", None)]


# --- confirmations -----------------------------------------------------------------------------------
class ActionConfirmation(GuardedAction):
    """Yes/no to the last question (cancel or address change); nothing pending → a friendly prompt."""

    def name(self) -> str:
        return "action_confirmation"

    def respond(self, dispatcher, tracker, domain):
        pending = tracker.get_slot("pending_confirmation")
        yes = latest_intent(tracker) == "affirm"
        with turn(tracker) as ctx:
            t = ctx.texts
            order = verified_order(ctx, tracker) if pending else None
            if order is None:
                dispatcher.utter_message(text=t("nothing_pending"))
                return [SlotSet("pending_confirmation", None)]
            if pending == "cancel":
                self._cancel(dispatcher, ctx, order, yes)
            elif pending == "address":
                self._address(dispatcher, ctx, order, yes, tracker.get_slot("new_address") or "")
        return [SlotSet("pending_confirmation", None), SlotSet("new_address", None), SlotSet("flow", None)]

    @staticmethod
    def _cancel(dispatcher, ctx: TurnContext, order, yes: bool) -> None:
        t = ctx.texts
        if not yes:
            dispatcher.utter_message(text=t("cancel_kept", order=order.number))
            return
        result = orders.cancel_order(ctx.session, order, ctx.now)
        if result.outcome is CancelOutcome.CANCELLED and result.refund_amount is not None:
            dispatcher.utter_message(text=t("cancel_done_refund", order=order.number,
                                            amount=t.money(result.refund_amount, result.currency)))
        elif result.outcome is CancelOutcome.CANCELLED:
            dispatcher.utter_message(text=t("cancel_done", order=order.number))
        elif result.outcome is CancelOutcome.ALREADY_CANCELLED:
            dispatcher.utter_message(text=t("cancel_already_cancelled", order=order.number))
        else:
            dispatcher.utter_message(text=t("cancel_too_late", order=order.number),
                                     buttons=[{"title": t("cancel_offer_return"), "payload": "/return_item"}])

    @staticmethod
    def _address(dispatcher, ctx: TurnContext, order, yes: bool, text: str) -> None:
        t = ctx.texts
        if not yes:
            dispatcher.utter_message(text=t("address_kept"))
            return
        result = orders.change_shipping_address(ctx.session, order, text, ctx.now)
        if result.outcome is AddressChangeOutcome.CHANGED:
            dispatcher.utter_message(text=t("address_done", order=order.number, address=result.address.one_line()))
        elif result.outcome is AddressChangeOutcome.INVALID:
            dispatcher.utter_message(text=t(f"invalid_address.{result.error}", country=order.ship_country))
        else:
            url = order.shipments[-1].tracking_url if order.shipments else ""
            dispatcher.utter_message(text=t("address_too_late", order=order.number, url=url))
