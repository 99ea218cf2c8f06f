"""The conversation's language across messages: signals from every channel, stickiness, switching, flags."""
from __future__ import annotations

import pytest

from crm.conversations.service import get_or_create
from crm.i18n.conversation_language import MACHINE, UNAVAILABLE, decide, only_a_language_request, priors_for
from tests.crm.factories import make_customer, utc

NOW = utc(2026, 3, 5, 10, 0)


def conversation(session, channel="web", sender="s-1", customer=None):
    conv = get_or_create(session, channel, sender, NOW)
    if customer is not None:
        conv.customer_id = customer.id
    session.flush()
    return conv


def say(session, conv, text, metadata=None, translatable=()):
    return decide(session, conv, text, conv.channel, conv.external_id, metadata or {}, translatable)


def test_first_message_decides_and_later_no_signal_messages_never_switch(session):
    conv = conversation(session)
    assert say(session, conv, "dónde está mi pedido").language == "es"
    for text in ("ok", "👍", "12345", "CD-104233", "anna@example.com", "https://shop.example/o/1", "+34 612 345 678"):
        turn = say(session, conv, text)
        assert (turn.language, turn.switched) == ("es", False), text
    assert conv.language == "es"


def test_one_word_in_another_language_does_not_switch(session):
    conv = conversation(session)
    say(session, conv, "hola, quiero devolver unas zapatillas")
    for word in ("danke", "merci", "thanks", "grazie"):
        assert say(session, conv, word).language == "es", word


def test_a_full_sentence_in_another_language_switches(session):
    conv = conversation(session)
    say(session, conv, "where is my order please")
    turn = say(session, conv, "eigentlich schreibe ich lieber auf deutsch, wo ist mein paket")
    assert (turn.language, turn.switched) == ("de", True)


@pytest.mark.parametrize("text, language", [
    ("can you speak spanish?", "es"), ("auf Deutsch bitte", "de"), ("日本語でお願いします", "ja"),
    ("English please", "en"), ("بالعربي لو سمحت", "ar"), ("türkçe konuşabilir misiniz", "tr"),
])
def test_explicit_request_switches(session, text, language):
    conv = conversation(session)
    say(session, conv, "bonjour, où est ma commande ?" if language != "fr" else "where is my order")
    turn = say(session, conv, text)
    assert (turn.language, turn.explicit) == (language, True)
    assert only_a_language_request(text)


def test_a_question_that_names_a_language_is_not_only_a_request():
    assert not only_a_language_request("do you ship italian shoes to my address in Rome next week please")
    assert not only_a_language_request("where is my order")


def test_priors_by_channel(session):
    customer = make_customer(session, language="pt")
    wa = conversation(session, "whatsapp", "5511987654321")
    assert priors_for(session, wa, "whatsapp", "5511987654321", {}).ranked()[0] == ("phone_country", "pt")
    web = conversation(session, "web", "w-1", customer)
    priors = priors_for(session, web, "web", "w-1", {"locale": "fr-FR", "accept_language": "de-DE,de;q=0.9"})
    assert [lang for _, lang in priors.ranked()][:3] == ["fr", "de", "pt"]
    mail = conversation(session, "email", "e-1")
    assert priors_for(session, mail, "email", "e-1", {"content_language": "it"}).ranked() == [("content_language", "it")]


def test_no_signal_first_message_uses_the_strongest_prior(session):
    conv = conversation(session, "whatsapp", "819012345678")
    turn = say(session, conv, "CD-100007")
    assert (turn.language, turn.reason) == ("ja", "prior:phone_country")
    # the decision is only a default: the next message with a signal decides for real
    assert say(session, conv, "where is my parcel? it's been two weeks").language == "en"


def test_profile_language_is_updated_from_the_conversation(session):
    customer = make_customer(session, language="en")
    conv = conversation(session, "web", "w-2", customer)
    say(session, conv, "wo ist mein paket, ich warte seit zwei wochen")
    session.flush()
    assert customer.preferred_language == "de"


def test_unserved_script_is_flagged_once_and_answered_in_the_conversation_language(session):
    conv = conversation(session)
    say(session, conv, "where is my order")
    first = say(session, conv, "배송이 언제 도착하나요")
    assert (first.language, first.translation, first.newly_unavailable, first.foreign) == ("en", UNAVAILABLE, True, "ko")
    again = say(session, conv, "주문 취소하고 싶어요")
    assert (again.translation, again.newly_unavailable) == (UNAVAILABLE, False)
    assert conv.translation == UNAVAILABLE  # agents see the flag
    back = say(session, conv, "sorry, where is my order then?")
    assert back.translation is None and conv.translation is None


def test_translatable_language_is_served_by_machine_translation(session):
    conv = conversation(session)
    turn = say(session, conv, "hej, när kommer min beställning?", translatable=("sv",))
    assert (turn.language, turn.translation) == ("sv", MACHINE)
    assert say(session, conv, "ok", translatable=("sv",)).language == "sv"
    # without the language pair installed, Swedish is not a language we can answer in
    other = conversation(session, sender="s-2")
    assert say(session, other, "hej, när kommer min beställning?").language != "sv"


def test_shop_languages_limit_what_is_chosen(session, monkeypatch):
    monkeypatch.setenv("CROSSDESK_LANGUAGES", "en,de")
    conv = conversation(session)
    assert say(session, conv, "dónde está mi pedido por favor").language in ("en", "de")


def test_a_guess_from_priors_is_not_a_decision(session):
    conv = conversation(session)
    assert say(session, conv, "CD-100001").language == "en"  # default, for now
    assert conv.language_reason is None
    assert say(session, conv, "hola").language == "es"  # one short word may decide an undecided conversation
