"""Quick-reply buttons for Rasa: the payloads are intents ("/affirm"), so they work in every language."""
from __future__ import annotations

from crm.i18n.catalog import Texts


def menu_buttons(t: Texts) -> list[dict[str, str]]:
    """The main menu as quick replies; payloads are intents so they work in every language."""
    items = [("track", "/track_order"), ("return", "/return_item"), ("refund", "/refund_status"),
             ("cancel", "/cancel_order"), ("address", "/change_shipping_address"), ("human", "/talk_to_human")]
    return [{"title": t(f"menu.{key}"), "payload": payload} for key, payload in items]


def yes_no_buttons(t: Texts) -> list[dict[str, str]]:
    return [{"title": t("button_yes"), "payload": "/affirm"}, {"title": t("button_no"), "payload": "/deny"}]
