"""Whole conversations in the shopper's language, through the REST channel against real Rasa + actions + app.

Each conversation tracks an order with verification and starts a return, the way a shopper in that
language writes. Replies are compared with the language's own catalog (so a reply in the wrong language,
or English leaking in, fails), and dates and money must be formatted for the locale.
"""
from __future__ import annotations

import re

import httpx
import pytest

from crm.i18n.catalog import Texts, catalog
from crm.demo import SHOWCASE_ORDERS
from tests.e2e.conftest import staff_api

pytestmark = pytest.mark.e2e
SHOWCASE = {o["number"]: o for o in SHOWCASE_ORDERS}
ORDER = "CD-100001"  # delivered 3 days ago in Germany (EUR): trackable and returnable

# How each language writes a long date and an amount in euros (Babel CLDR forms).
LONG_DATE = {
    "es": r"\d{1,2} de [a-z]+ de \d{4}",
    "de": r"\d{1,2}\. [a-zä]+ \d{4}",
    "zh": r"\d{4}年\d{1,2}月\d{1,2}日",
    "ja": r"\d{4}年\d{1,2}月\d{1,2}日",
    "ar": r"\d{1,2} [\u0600-\u06ff]+ \d{4}",
    "fr": r"\d{1,2} [a-zéû]+ \d{4}",
    "pt": r"\d{1,2} de [a-zç]+ de \d{4}",
    "it": r"\d{1,2} [a-z]+ \d{4}",
    "nl": r"\d{1,2} [a-z]+ \d{4}",
    "tr": r"\d{1,2} [a-zçğıöşü]+ \d{4}",
    "id": r"\d{1,2} [a-z]+ \d{4}",
}
EURO = {
    "es": r"\d+,\d\d\s€", "de": r"\d+,\d\d\s€", "fr": r"\d+,\d\d\s€", "it": r"\d+,\d\d\s€", "pt": r"€\s\d+,\d\d",
    "nl": r"€\s\d+,\d\d", "tr": r"€\d+,\d\d", "id": r"€\d+,\d\d", "zh": r"€\d+\.\d\d", "ja": r"€\d+\.\d\d",
    "ar": r"\d+\.\d\d\s€",
}

# What a shopper writes, per language: ask to track, ask to return, give a return reason.
SHOPPER = {
    "es": ("hola, dónde está mi pedido?", "quiero devolver algo", "me queda pequeño"),
    "de": ("hallo, wo bleibt meine bestellung?", "ich möchte etwas zurückschicken", "zu klein"),
    "zh": ("你好，我的快递到哪了？", "我想退货", "尺码太小了"),
    "ja": ("注文した商品がまだ届きません", "返品したいです", "サイズが小さかった"),
    "ar": ("هلا، وين الطلب حقي؟", "أبغى أرجع المنتج", "المقاس صغير"),
}

# English catalog words that must never show up in a reply in another language.
ENGLISH_LEAKS = re.compile(r"\b(the|your|order|you|please|thanks|which|return|refund|delivered|verified)\b")


def expected(language: str, key: str, **values) -> str:
    return Texts(language)(key, **values).lower()


def assert_no_english(language: str, reply: str) -> None:
    # Order numbers, RMA codes, URLs, emails and carrier names are the same in every language.
    scrubbed = re.sub(r"https?://\S+|\S+@\S+|\b(cd|rma)-[\w-]+", " ", reply)
    leak = ENGLISH_LEAKS.search(scrubbed)
    assert leak is None, f"English {leak.group()!r} in a {language} reply: {reply}"


_USED: set[str] = set()


def returnable_order(live_stack) -> tuple[str, str]:
    """(number, email) of a delivered euro order with two or more returnable lines that no other test touched
    (the stack's database is shared by the session, and returns change what is returnable)."""
    from datetime import datetime, timezone

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from crm.db import make_engine
    from crm.orders.models import Order
    from crm.returns.service import check_eligibility

    engine = make_engine(live_stack.database_url)
    try:
        with Session(engine) as session:
            now = datetime.now(timezone.utc)
            for order in session.scalars(select(Order).where(Order.currency == "EUR", Order.status == "delivered")
                                         .order_by(Order.number)):
                if order.number in _USED or order.number in SHOWCASE:
                    continue
                eligibility = check_eligibility(session, order, now)
                if eligibility.eligible and len(eligibility.lines) >= 2:
                    _USED.add(order.number)
                    return order.number, order.contact_email
    finally:
        engine.dispose()
    raise AssertionError("no returnable euro order left in the demo shop")


def verify(c, language: str, request: str, order: str = ORDER, email: str | None = None) -> str:
    """Ask `request` in the language, give the order number and the email; the reply after verification."""
    reply = c.text(request)
    assert expected(language, "ask_order_number") in reply, reply
    reply = c.text(order)
    assert expected(language, "ask_contact", order=order).lower() in reply, reply
    reply = c.text(email or SHOWCASE[order]["email"])
    assert expected(language, "verified", order=order) in reply, reply
    return reply


@pytest.mark.parametrize("language", sorted(SHOPPER))
def test_track_then_return_in_the_shoppers_language(chat, live_stack, language):
    track, give_back, reason = SHOPPER[language]
    number, email = returnable_order(live_stack)
    c = chat()
    replies = []

    reply = verify(c, language, track, number, email)
    replies.append(reply)
    delivered = expected(language, "track_delivered", delivered="@@").split("@@")[0].strip()
    assert delivered in reply, reply
    assert re.search(LONG_DATE[language], reply), f"no {language} long date in: {reply}"

    reply = c.text(give_back)
    replies.append(reply)
    if expected(language, "ask_order_number") in reply:  # a new flow may ask which order again
        reply = c.text(number)
        replies.append(reply)
    assert expected(language, "ask_return_items", deadline="@@").split("@@")[0].strip() in reply, reply
    reply = c.text("1")
    replies.append(reply)
    assert expected(language, "ask_return_reason") in reply, reply
    reply = c.text(reason)
    replies.append(reply)
    assert "rma-" in reply, reply
    assert re.search(EURO[language], reply), f"no {language} euro amount in: {reply}"

    for reply in replies:
        assert_no_english(language, reply)


def test_explicit_request_switches_and_one_word_does_not(chat):
    c = chat()
    reply = c.text("hola, dónde está mi pedido?")
    assert expected("es", "ask_order_number") in reply, reply
    # "ok" or an order number carries no language: still Spanish
    reply = c.text(ORDER)
    assert expected("es", "ask_contact", order=ORDER) in reply, reply
    # One German-looking word does not move a Spanish conversation...
    reply = c.text("danke")
    assert_no_english("es", reply)
    assert "danke" not in reply
    # ...but asking for a language does, and the bot confirms in that language.
    reply = c.text("can you speak english please?")
    assert expected("en", "language_switched") in reply, reply
    reply = c.text(SHOWCASE[ORDER]["email"])
    assert expected("en", "verified", order=ORDER) in reply, reply


def test_switching_language_mid_conversation(chat):
    c = chat()
    reply = c.text("where is my order?")
    assert expected("en", "ask_order_number") in reply, reply
    reply = c.text("perdón, mejor en español: quiero saber dónde está mi pedido")
    assert expected("es", "ask_order_number") in reply or expected("es", "ask_contact", order=ORDER) in reply, reply


def test_priors_decide_a_message_without_language(chat):
    # The first message is only an order number: the widget locale decides the reply language.
    c = chat(metadata={"locale": "de-DE"})
    reply = c.text("CD-100001")
    assert_no_english("de", reply)
    assert any(expected("de", key) in reply for key in ("inform_without_request", "fallback")), reply


def test_every_catalog_covers_every_english_key():
    from tests.test_catalog import flatten

    english = {key for key, _ in flatten(catalog("en"))}
    for language in ("es", "pt", "fr", "de", "it", "zh", "ja", "id", "ar", "tr", "nl"):
        assert {key for key, _ in flatten(catalog(language))} == english, language


def test_unsupported_language_goes_through_offline_translation(chat, live_stack):
    """Swedish is not one of the twelve: the shopper's words reach the NLU in English (argostranslate, the
    shipped sv<->en packages) and the replies come back in Swedish, order numbers untouched."""
    c = chat()
    reply = c.text("Var är mitt paket?")
    assert "ordernummer" in reply and "order number" not in reply, reply
    reply = c.text(ORDER)
    assert ORDER.lower() in reply and "e-post" in reply, reply
    reply = c.text(SHOWCASE[ORDER]["email"])
    assert f"tack, du är verifierad för order {ORDER.lower()}" in reply, reply
    detail = staff_api(live_stack).get(f"/api/conversations/rest:{c.sender}").json()
    assert (detail["language"], detail["translation"]) == ("sv", "machine")
    transcript = staff_api(live_stack).get(f"/api/conversations/rest:{c.sender}/messages").json()
    first = next(m for m in transcript if m["author"] == "shopper")
    assert first["text"] == "Var är mitt paket?"  # the shopper's own words are kept...
    assert first["payload"]["translation"]["en"] == "Where is my parcel?"  # ...and agents get the English


def test_language_we_cannot_serve_gets_an_apology_and_a_flag(chat, live_stack):
    c = chat()
    c.text("where is my order")
    reply = c.text("주문한 물건이 아직 안 왔어요")
    assert expected("en", "translation_unavailable") in reply, reply
    detail = staff_api(live_stack).get(f"/api/conversations/rest:{c.sender}").json()
    assert detail["translation"] == "unavailable"
    reply = c.text("주문 취소할게요")
    assert expected("en", "translation_unavailable") not in reply  # said once, not on every message
