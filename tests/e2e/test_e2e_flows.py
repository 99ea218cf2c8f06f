"""Whole conversations through the app's REST channel against real Rasa + actions + app processes."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import httpx
import pytest

from crm.conversations.service import signed_identity
from crm.demo import SHOWCASE_ORDERS
from tests.e2e.conftest import IDENTITY_SECRET, rasa_api, staff_api

pytestmark = pytest.mark.e2e
SHOWCASE = {o["number"]: o for o in SHOWCASE_ORDERS}
NEW_ADDRESS = {"DE": "Hauptstraße 12, 10115 Berlin", "US": "500 Main Street, Springfield, 62701",
               "GB": "10 Downing Street, London, SW1A 2AA", "FR": "5 rue de Rivoli, 75001 Paris"}


def email(number: str) -> str:
    return SHOWCASE[number]["email"]


def verify(chat, request: str, number: str, contact: str | None = None) -> str:
    """Ask `request`, give the order number and contact; return the reply after verification."""
    reply = chat.text(request)
    assert "order number" in reply, reply
    reply = chat.text(number)
    assert "email address or phone number" in reply, reply
    return chat.text(contact or email(number))


def test_track_order_with_customs_duties(chat):
    c = chat()
    reply = verify(c, "where is my order?", "CD-100002")
    assert "verified" in reply
    assert "held at import customs" in reply and "£" in reply, reply
    assert "http" in reply  # payment or tracking link


def test_track_order_number_in_first_message_and_phone(chat):
    c = chat()
    reply = c.text("hi, where is my package CD-100007")
    assert "email address or phone number" in reply, reply
    reply = c.text(SHOWCASE["CD-100007"]["phone"])
    assert "on its way" in reply and "estimated delivery" in reply, reply


def test_wrong_contact_and_unknown_order_get_the_same_answer(chat):
    c = chat()
    wrong = verify(c, "track my order", "CD-100002", "nobody@example.com")
    c2 = chat()
    unknown = verify(c2, "track my order", "CD-199998", "nobody@example.com")
    assert "couldn't find an order with that number and contact" in wrong
    assert wrong == unknown
    assert "cd-100002" not in wrong  # nothing disclosed


def test_verification_attempts_are_rate_limited(chat):
    c = chat()
    c.text("where is my order")
    replies = []
    for _ in range(6):
        c.text("CD-100001")
        replies.append(c.text("wrong@example.com"))
    assert any("too many attempts" in r for r in replies[4:]), replies
    # even the right email is refused while limited (the bot remembers which order we were on)
    assert "email address or phone number" in c.text("where is my order")
    reply = c.text(email("CD-100001"))
    assert "too many attempts" in reply and "delivered" not in reply, reply


def test_return_flow_creates_rma_with_label_and_refund_estimate(chat):
    c = chat()
    reply = verify(c, "i want to return something", "CD-100001")
    assert "final sale" in reply  # the final-sale line is excluded and said so
    assert "which item" in reply, reply
    reply = c.text("1")
    assert "reason" in reply, reply
    reply = c.text("too small")
    assert "rma-" in reply and "label" in reply and "€" in reply, reply


@pytest.mark.parametrize("number, expected", [
    ("CD-100004", "return window"),
    ("CD-100005", "final sale"),
    ("CD-100003", "hasn't been delivered"),
])
def test_ineligible_returns_say_why(chat, number, expected):
    reply = verify(chat(), "return an item", number)
    assert expected in reply, reply


def test_refund_status(chat):
    reply = verify(chat(), "where is my refund", "CD-100006")
    assert "refund of" in reply and "€" in reply, reply


def test_cancel_before_shipment_then_already_cancelled(chat):
    c = chat()
    reply = verify(c, "please cancel my order", "CD-100003")
    assert "shall i cancel it" in reply, reply
    reply = c.text("yes")
    assert "is cancelled" in reply and "refund" in reply, reply
    # verification lasts for the session: no second verification for the same order
    reply = c.text("cancel my order")
    assert "already cancelled" in reply, reply


def test_cancel_after_shipment_offers_a_return(chat):
    c = chat()
    verify(c, "cancel order", "CD-100007")
    reply = c.say("cancel order CD-100007")
    text = " ".join(m.get("text", "") for m in reply).lower()
    assert "already shipped" in text, text
    assert any(b["payload"] == "/return_item" for m in reply for b in m.get("buttons", []))


def test_address_change_validates_and_confirms(chat):
    c = chat()
    reply = verify(c, "i need to change my delivery address", "CD-100011")
    assert "new delivery address" in reply, reply
    reply = c.text("somewhere nice")
    assert "postal code" in reply or "street" in reply, reply
    reply = c.text(NEW_ADDRESS[SHOWCASE["CD-100011"]["market"]])
    assert "is that right" in reply, reply
    assert "now go to" in c.text("yes")


def test_handoff_pauses_the_bot_until_closed(chat, live_stack):
    c = chat()
    assert "person from our team" in c.text("i want to talk to a human")
    handoffs = staff_api(live_stack).get(f"/api/handoffs").json()
    mine = [h for h in handoffs if h["conversation"] == f"rest:{c.sender}"]
    assert len(mine) == 1
    assert "already in the queue" in c.text("where is my order")  # bot paused
    staff_api(live_stack).post(f"/api/handoffs/{mine[0]['id']}/close").raise_for_status()
    assert "order number" in c.text("where is my order")


def test_repeated_misunderstanding_offers_a_human(chat):
    c = chat()
    first = c.say("qwzx vbnm plkj")
    second = c.say("zzkq wpfx hhhh")
    assert "didn't quite get" in first[0]["text"].lower() or "can't help with that" in first[0]["text"].lower()
    assert not any(b["payload"] == "/talk_to_human" and "person" not in b["title"].lower()
                   for b in first[0].get("buttons", []))
    assert "pass you to a person" in second[0]["text"].lower(), second
    assert any(b["payload"] == "/talk_to_human" for b in second[0].get("buttons", [])), second


def _signed(address: str, sender: str) -> dict:
    return {"identity": signed_identity("email", address, sender, IDENTITY_SECRET, datetime.now(timezone.utc))}


def test_signed_channel_identity_counts_as_verification_on_its_own_message_only(chat):
    address = email("CD-100001")
    c = chat(sender=f"e2e-signed-{uuid.uuid4().hex[:8]}")
    c.metadata = _signed(address, c.sender)
    reply = c.text("where is my order CD-100001")
    assert "delivered" in reply and "email address or phone number" not in reply, reply
    # an unsigned claim does not
    c2 = chat(metadata={"identity": {"kind": "email", "value": address, "signature": "0" * 64, "expires": 2**40}})
    assert "email address or phone number" in c2.text("where is my order CD-100001")
    # a signature made for another sender, replayed here, does not
    c3 = chat()
    c3.metadata = _signed(address, "someone-else")
    assert "email address or phone number" in c3.text("where is my order CD-100001")
    # one signed message does not make the conversation trusted: the next, unsigned one proves nothing
    c4 = chat(sender=f"e2e-once-{uuid.uuid4().hex[:8]}")
    c4.metadata = _signed(address, c4.sender)
    c4.text("hello")
    c4.metadata = {}
    assert "email address or phone number" in c4.text("where is my order CD-100001")


def test_transcript_is_stored(chat, live_stack):
    c = chat()
    c.text("hello")
    messages = staff_api(live_stack).get(f"/api/conversations/rest:{c.sender}/messages").json()
    assert [m["direction"] for m in messages][:2] == ["in", "out"]
    assert messages[0]["text"] == "hello"


def test_verification_ends_with_the_session(chat, live_stack):
    c = chat()
    assert "on its way" in verify(c, "where is my order", "CD-100007")
    # Rasa starts a new session (what 60 idle minutes do); the grant must not survive it
    httpx.post(rasa_api(live_stack, f"/conversations/rest:{c.sender}/execute"),
               json={"name": "action_session_start"}).raise_for_status()
    reply = c.text("where is my order CD-100007")
    assert "email address or phone number" in reply and "on its way" not in reply, reply
