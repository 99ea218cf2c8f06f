"""Conversations, signed identities and transcripts."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.conversations.models import Conversation
from crm.conversations.service import (
    conversation_key, customer_for_identity, find_by_key, get_or_create, identity_signature, link_customer, record,
    split_key, transcript, trusted_identity,
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


def _meta(kind, value, signature):
    return {"identity": {"kind": kind, "value": value, "signature": signature}}


def test_trusted_identity_accepts_correct_signature():
    sig = identity_signature("email", "Anna@Example.de", SECRET)
    assert trusted_identity(_meta("email", "Anna@Example.de", sig), SECRET) == ("email", "anna@example.de")
    psig = identity_signature("phone", "+49 151 23456789", SECRET)
    assert trusted_identity(_meta("phone", "+49 151 23456789", psig), SECRET) == ("phone", "+4915123456789")


def test_trusted_identity_reads_secret_from_environment(monkeypatch):
    sig = identity_signature("email", "anna@example.de", SECRET)
    monkeypatch.setenv("CROSSDESK_IDENTITY_SECRET", SECRET)
    assert trusted_identity(_meta("email", "anna@example.de", sig)) == ("email", "anna@example.de")
    monkeypatch.delenv("CROSSDESK_IDENTITY_SECRET")
    assert trusted_identity(_meta("email", "anna@example.de", sig)) is None


@pytest.mark.parametrize("metadata, secret", [
    (_meta("email", "anna@example.de", identity_signature("email", "anna@example.de", "other-secret")), SECRET),
    (_meta("email", "anna@example.de", identity_signature("email", "eve@example.de", SECRET)), SECRET),
    (_meta("email", "anna@example.de", identity_signature("phone", "anna@example.de", SECRET)), SECRET),
    (_meta("email", "anna@example.de", identity_signature("email", "anna@example.de", SECRET).upper()), SECRET),
    (_meta("email", "anna@example.de", ""), SECRET),
    (_meta("email", "anna@example.de", None), SECRET),
    ({"identity": {"kind": "email", "value": "anna@example.de"}}, SECRET),   # unsigned claim
    (_meta("web", "session-1", identity_signature("web", "session-1", SECRET)), SECRET),  # not email/phone
    (_meta("email", "not-an-email", identity_signature("email", "not-an-email", SECRET)), SECRET),
    (_meta("email", "anna@example.de", identity_signature("email", "anna@example.de", "")), ""),  # no secret
    ({}, SECRET),
    ({"identity": "anna@example.de"}, SECRET),
    (None, SECRET),
])
def test_trusted_identity_rejects(metadata, secret, monkeypatch):
    monkeypatch.delenv("CROSSDESK_IDENTITY_SECRET", raising=False)
    assert trusted_identity(metadata, secret) is None


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

    assert channel_identity("whatsapp", "+4915112345678", {}) == (("phone", "+4915112345678"), True)
    assert channel_identity("whatsapp", "not-a-phone", {}) == (None, False)
    assert channel_identity("email", "thread-1", {"from": "Anna <Anna.Schmidt@Example.com>"}) == \
        (("email", "anna.schmidt@example.com"), False)  # links, proves nothing
    assert channel_identity("web", "sess", {"identity": {"kind": "email", "value": "a@b.co"}}) == (None, False)
