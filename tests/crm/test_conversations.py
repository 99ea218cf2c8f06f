"""Conversations, signed identities and transcripts."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.conversations.models import Conversation
from crm.conversations.service import (
    conversation_key, customer_for_identity, find_by_key, get_or_create, identity_signature, link_customer, record,
    signed_identity, split_key, transcript, trusted_identity,
)
from crm.db import make_engine
from tests.crm.factories import make_customer, utc

NOW = utc(2026, 3, 5, 10, 0)
SECRET = "s3cret-shop-key"


def test_get_or_create_is_idempotent(session, db_url):
    conv = get_or_create(session, "whatsapp", "+4915123456789", NOW)
    again = get_or_create(session, "whatsapp", "+4915123456789", utc(2026, 3, 6))
    assert again is conv and conv.id is not None
    other_channel = get_or_create(session, "web", "+4915123456789", NOW)
    assert other_channel.id != conv.id
    session.commit()
    engine = make_engine(db_url)
    try:
        with Session(engine) as fresh:
            reopened = get_or_create(fresh, "whatsapp", "+4915123456789", utc(2026, 3, 7))
            assert reopened.id == conv.id and reopened.created_at == NOW
            assert (reopened.mode, reopened.language, reopened.customer_id) == ("bot", "en", None)
            assert fresh.scalar(select(func.count(Conversation.id))) == 2
    finally:
        engine.dispose()


def test_keys_round_trip(session):
    conv = get_or_create(session, "web", "abc:def", NOW)
    session.flush()
    assert conv.key == conversation_key("web", "abc:def") == "web:abc:def"
    assert split_key(conv.key) == ("web", "abc:def")
    assert find_by_key(session, "web:abc:def").id == conv.id
    assert find_by_key(session, "whatsapp:abc:def") is None


SENDER = "shop-user-42"
EXPIRES = int(NOW.timestamp()) + 120


def _meta(kind, value, signature, expires=EXPIRES):
    return {"identity": {"kind": kind, "value": value, "expires": expires, "signature": signature}}


def _sig(kind="email", value="anna@example.de", sender=SENDER, expires=EXPIRES, secret=SECRET):
    return identity_signature(kind, value, sender, expires, secret)


def test_trusted_identity_accepts_correct_signature():
    meta = _meta("email", "Anna@Example.de", _sig("email", "Anna@Example.de"))
    assert trusted_identity(meta, SENDER, NOW, SECRET) == ("email", "anna@example.de")
    meta = _meta("phone", "+49 151 23456789", _sig("phone", "+49 151 23456789"))
    assert trusted_identity(meta, SENDER, NOW, SECRET) == ("phone", "+4915123456789")
    # signed_identity is what a shop's server sends; it round-trips
    made = signed_identity("email", "anna@example.de", SENDER, SECRET, NOW, lifetime_s=60)
    assert trusted_identity({"identity": made}, SENDER, NOW, SECRET) == ("email", "anna@example.de")


def test_trusted_identity_reads_secret_from_settings(monkeypatch):
    from crm import config

    meta = _meta("email", "anna@example.de", _sig())
    monkeypatch.setenv("CROSSDESK_IDENTITY_SECRET", SECRET)
    config.get_settings.cache_clear()
    try:
        assert trusted_identity(meta, SENDER, NOW) == ("email", "anna@example.de")
        monkeypatch.delenv("CROSSDESK_IDENTITY_SECRET")
        config.get_settings.cache_clear()
        assert trusted_identity(meta, SENDER, NOW) is None
    finally:
        config.get_settings.cache_clear()


def test_signature_is_bound_to_sender_and_expiry():
    meta = _meta("email", "anna@example.de", _sig())
    assert trusted_identity(meta, "another-sender", NOW, SECRET) is None  # replayed from another sender
    assert trusted_identity(meta, SENDER, utc(2026, 3, 5, 10, 2, 1), SECRET) is None  # after it expired
    far = int(NOW.timestamp()) + 86400
    assert trusted_identity(_meta("email", "anna@example.de", _sig(expires=far), far), SENDER, NOW, SECRET) is None
    # the expiry is signed: moving it forward breaks the signature
    assert trusted_identity(_meta("email", "anna@example.de", _sig(), EXPIRES + 60), SENDER, NOW, SECRET) is None


@pytest.mark.parametrize("metadata, secret", [
    (_meta("email", "anna@example.de", _sig(secret="other-secret")), SECRET),
    (_meta("email", "anna@example.de", _sig(value="eve@example.de")), SECRET),
    (_meta("email", "anna@example.de", _sig(kind="phone")), SECRET),
    (_meta("email", "anna@example.de", _sig().upper()), SECRET),
    (_meta("email", "anna@example.de", ""), SECRET),
    (_meta("email", "anna@example.de", None), SECRET),
    (_meta("email", "anna@example.de", _sig(), expires=str(EXPIRES)), SECRET),  # expiry must be an integer
    (_meta("email", "anna@example.de", _sig(), expires=None), SECRET),
    ({"identity": {"kind": "email", "value": "anna@example.de"}}, SECRET),   # unsigned claim
    (_meta("web", "session-1", _sig(kind="web", value="session-1")), SECRET),  # not email/phone
    (_meta("email", "not-an-email", _sig(value="not-an-email")), SECRET),
    (_meta("email", "anna@example.de", _sig(secret="")), ""),  # no secret
    ({}, SECRET),
    ({"identity": "anna@example.de"}, SECRET),
    (None, SECRET),
])
def test_trusted_identity_rejects(metadata, secret):
    assert trusted_identity(metadata, SENDER, NOW, secret) is None


def test_link_customer(session):
    anna = make_customer(session, email="anna@example.de", phone="+4915123456789")
    conv = get_or_create(session, "web", "s1", NOW)
    link_customer(session, conv, None)
    assert conv.customer_id is None
    link_customer(session, conv, ("email", "nobody@example.de"))
    assert conv.customer_id is None
    link_customer(session, conv, ("email", "anna@example.de"))
    assert conv.customer_id == anna.id
    # first match wins: a later identity of someone else does not re-link
    eve = make_customer(session, name="Eve", email="eve@example.de")
    link_customer(session, conv, ("email", "eve@example.de"))
    assert conv.customer_id == anna.id
    wa = get_or_create(session, "whatsapp", "+4915123456789", NOW)
    link_customer(session, wa, ("phone", "+4915123456789"))
    session.commit()
    session.expire_all()
    assert session.get(Conversation, wa.id).customer_id == anna.id
    assert customer_for_identity(session, "email", "eve@example.de") == eve.id
    assert customer_for_identity(session, "phone", "anna@example.de") is None


def test_record_and_transcript(session):
    conv = get_or_create(session, "web", "s1", NOW)
    record(session, conv, "in", "shopper", "hi", {}, utc(2026, 3, 5, 10, 1))
    record(session, conv, "out", "bot", "hello", {"buttons": [{"title": "Track"}]}, utc(2026, 3, 5, 10, 2))
    record(session, conv, "in", "shopper", "where is CD-104233", None, utc(2026, 3, 5, 10, 3))
    record(session, conv, "out", "bot", "checking", {}, utc(2026, 3, 5, 10, 4))
    session.commit()
    session.expire_all()
    conv = find_by_key(session, "web:s1")
    assert conv.last_inbound_at == utc(2026, 3, 5, 10, 3)
    msgs = transcript(session, conv)
    assert [(m.direction, m.author, m.text) for m in msgs] == [
        ("in", "shopper", "hi"), ("out", "bot", "hello"), ("in", "shopper", "where is CD-104233"),
        ("out", "bot", "checking")]
    assert msgs[1].payload == {"buttons": [{"title": "Track"}]} and msgs[2].payload == {}
    assert [m.text for m in transcript(session, conv, limit=2)] == ["where is CD-104233", "checking"]


def test_channel_identities_trusted_or_not(session):
    from crm.conversations.service import channel_identity

    wa = channel_identity("whatsapp", "+4915112345678", {}, NOW)
    assert (wa.identity, wa.trusted) == (("phone", "+4915112345678"), True)
    assert channel_identity("whatsapp", "not-a-phone", {}, NOW).identity is None
    mail = channel_identity("email", "thread-1", {"from": "Anna <Anna.Schmidt@Example.com>"}, NOW)
    assert (mail.identity, mail.trusted, mail.linkable) == (("email", "anna.schmidt@example.com"), False, True)
    forged = channel_identity("email", "thread-1", {"from": "anna@example.com", "dmarc": "fail"}, NOW)
    assert (forged.trusted, forged.linkable) == (False, False)  # DMARC failed: not even linked
    web = channel_identity("web", "sess", {"identity": {"kind": "email", "value": "a@b.co"}}, NOW)
    assert (web.identity, web.trusted) == (None, False)


def test_message_trust_is_only_for_trusted_identities(session):
    from crm.conversations.service import ChannelIdentity, message_trust

    anna = make_customer(session, email="anna@example.de", phone="+4915123456789")
    wa = get_or_create(session, "whatsapp", "+4915123456789", NOW)
    rest = get_or_create(session, "rest", "s1", NOW)
    session.flush()
    assert message_trust(session, wa, ChannelIdentity(("phone", "+4915123456789"), trusted=True)) == \
        {"source": "whatsapp", "customer_id": anna.id, "phone": "+4915123456789"}
    assert message_trust(session, rest, ChannelIdentity(("email", "anna@example.de"), trusted=True)) == \
        {"source": "signed_identity", "customer_id": anna.id}
    assert message_trust(session, rest, ChannelIdentity(("email", "anna@example.de"), trusted=False)) == {}
