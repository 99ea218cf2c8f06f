"""Actions decide trust from the app's own records, not from what a sender id looks like.

The real validation action runs against a real rasa-sdk Tracker and the real database: a "whatsapp:+49…"
sender id proves nothing by itself; only the trust the app stored on the message being answered does.
"""
from __future__ import annotations

from datetime import datetime, timezone

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.verification import VERIFIED_PREFIX, ValidateVerifyForm
from crm.conversations import service as conversations
from crm.conversations.models import INBOUND
from crm.db import unit_of_work
from tests.crm.factories import make_customer, make_order

PHONE = "+4915123456789"
KEY = f"whatsapp:{PHONE}"


def _tracker(sender: str, inbound_id: int | None) -> Tracker:
    metadata = {"inbound_id": inbound_id} if inbound_id is not None else {}
    events = [{"event": "user", "text": "CD-104233", "metadata": metadata, "parse_data": {"intent": {"name": "inform"}}}]
    return Tracker(sender, {"requested_slot": "order_number"}, {"text": "CD-104233", "intent": {"name": "inform"}},
                   events, False, None, {"name": "verify_form"}, "action_listen")


def _validate(tracker: Tracker) -> dict:
    return ValidateVerifyForm().validate_order_number("CD-104233", CollectingDispatcher(), tracker, {})


def _shop(app_db):
    with unit_of_work() as session:
        anna = make_customer(session, email="anna@example.de", phone=PHONE)
        make_order(session, anna, number="CD-104233", contact_phone=PHONE)


def _message(trust: dict) -> int:
    now = datetime.now(timezone.utc)
    with unit_of_work() as session:
        conv = conversations.get_or_create(session, "whatsapp", PHONE, now)
        msg = conversations.record(session, conv, INBOUND, "shopper", "CD-104233", {"trust": trust}, now)
        session.flush()
        return msg.id


def test_a_whatsapp_shaped_sender_id_alone_proves_nothing(app_db):
    _shop(app_db)
    # no conversation the app created: nothing is trusted, and the action creates none
    assert _validate(_tracker(KEY, None)) == {"order_number": "CD-104233"}
    with unit_of_work() as session:
        assert conversations.find_by_key(session, KEY) is None
    # the conversation exists, but this turn names no stored message (a call not made by the app)
    _message({"source": "whatsapp", "customer_id": None, "phone": PHONE})
    assert _validate(_tracker(KEY, None)) == {"order_number": "CD-104233"}


def test_the_trust_stored_on_the_answered_message_counts(app_db):
    _shop(app_db)
    untrusted = _message({})
    trusted = _message({"source": "whatsapp", "customer_id": None, "phone": PHONE})
    assert _validate(_tracker(KEY, untrusted)) == {"order_number": "CD-104233"}
    assert _validate(_tracker(KEY, trusted)) == {"order_number": "CD-104233",
                                                  "contact": f"{VERIFIED_PREFIX}identity"}


def test_a_message_of_another_conversation_lends_no_trust(app_db):
    _shop(app_db)
    trusted = _message({"source": "whatsapp", "customer_id": None, "phone": PHONE})
    now = datetime.now(timezone.utc)
    with unit_of_work() as session:
        conversations.get_or_create(session, "rest", "attacker", now)
    assert _validate(_tracker("rest:attacker", trusted)) == {"order_number": "CD-104233"}
