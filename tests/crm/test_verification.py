"""Ownership proof: grants, no enumeration, rate limits, expiry."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from crm.config import Settings
from crm.verification.models import VerificationAttempt, VerifiedOrder
from crm.verification.service import (
    Outcome, granted_order, is_rate_limited, revoke_all, verify_with_contact, verify_with_identity,
)
from tests.crm.factories import make_customer, make_order, utc

NOW = utc(2026, 3, 10, 12, 0)
CONV = "web:abc"
OTHER = "whatsapp:+4915100000000"


def settings(**overrides) -> Settings:
    base = dict(database_url="sqlite://", redis_url=None, rasa_url="http://x", verification_ttl_minutes=30,
                verification_max_attempts_per_conversation=3, verification_max_attempts_per_order=5,
                verification_window_minutes=60)
    base.update(overrides)
    return Settings(**base)


def _order(session, **kw):
    customer = make_customer(session, email="anna@example.de")
    return make_order(session, customer, number="CD-104233", market="DE", contact_email="Anna@Example.de",
                      contact_phone="+4915123456789", **kw)


def test_right_email_verifies_and_grants(session):
    order = _order(session)
    result = verify_with_contact(session, CONV, "cd104233", "it's ANNA@example.de", NOW, settings())
    assert result.outcome is Outcome.VERIFIED
    assert result.order.id == order.id and result.method == "email"
    session.flush()
    assert granted_order(session, CONV, "CD-104233", NOW).id == order.id
    assert granted_order(session, CONV, "#104233", NOW + timedelta(minutes=29)).id == order.id
    grant = session.scalar(select(VerifiedOrder))
    assert (grant.method, grant.expires_at) == ("email", NOW + timedelta(minutes=30))
    attempt = session.scalar(select(VerificationAttempt))
    assert (attempt.order_number, attempt.succeeded, attempt.conversation_key) == ("CD-104233", True, CONV)


def test_right_phone_in_local_format_uses_order_market(session):
    order = _order(session)
    result = verify_with_contact(session, CONV, "order 104233", "0151 23456789", NOW, settings())
    assert (result.outcome, result.method) == (Outcome.VERIFIED, "phone")
    session.flush()
    assert granted_order(session, CONV, "CD-104233", NOW).id == order.id


def test_wrong_email_and_unknown_order_are_indistinguishable(session):
    _order(session)
    wrong = verify_with_contact(session, CONV, "CD-104233", "eve@example.de", NOW, settings())
    unknown = verify_with_contact(session, CONV, "CD-199999", "anna@example.de", NOW, settings())
    assert wrong == unknown
    assert wrong.outcome is Outcome.NOT_VERIFIED and wrong.order is None and wrong.method is None
    session.flush()
    assert granted_order(session, CONV, "CD-104233", NOW) is None
    assert session.scalar(select(func.count(VerifiedOrder.id))) == 0
    attempts = session.scalars(select(VerificationAttempt).order_by(VerificationAttempt.id)).all()
    assert [(a.order_number, a.succeeded) for a in attempts] == [("CD-104233", False), ("CD-199999", False)]


def test_wrong_phone_not_verified(session):
    _order(session)
    result = verify_with_contact(session, CONV, "CD-104233", "0151 99999999", NOW, settings())
    assert result.outcome is Outcome.NOT_VERIFIED


def test_incomplete_input(session):
    _order(session)
    assert verify_with_contact(session, CONV, "no number", "anna@example.de", NOW, settings()).outcome \
        is Outcome.INCOMPLETE
    assert verify_with_contact(session, CONV, "CD-104233", "dunno", NOW, settings()).outcome is Outcome.INCOMPLETE
    session.flush()
    assert session.scalar(select(func.count(VerificationAttempt.id))) == 0


def test_rate_limit_per_conversation_and_window_expiry(session):
    order = _order(session)
    s = settings()
    for i in range(3):
        assert verify_with_contact(session, CONV, f"CD-10000{i}", "x@example.de", NOW + timedelta(minutes=i),
                                   s).outcome is Outcome.NOT_VERIFIED
    session.flush()
    # even the right pair is refused now, and the refusal is not recorded as another attempt
    limited = verify_with_contact(session, CONV, "CD-104233", "anna@example.de", NOW + timedelta(minutes=5), s)
    assert limited.outcome is Outcome.RATE_LIMITED and limited.order is None
    session.flush()
    assert session.scalar(select(func.count(VerificationAttempt.id))) == 3
    assert granted_order(session, CONV, "CD-104233", NOW + timedelta(minutes=5)) is None
    # another conversation is not affected
    assert verify_with_contact(session, OTHER, "CD-104233", "anna@example.de", NOW + timedelta(minutes=5),
                               s).outcome is Outcome.VERIFIED
    # once the first failure leaves the 60-minute window, one more try is allowed
    assert is_rate_limited(session, CONV, None, NOW + timedelta(minutes=59, seconds=59), s)
    assert not is_rate_limited(session, CONV, None, NOW + timedelta(minutes=60, seconds=1), s)
    later = verify_with_contact(session, CONV, "CD-104233", "anna@example.de", NOW + timedelta(minutes=61), s)
    assert later.outcome is Outcome.VERIFIED and later.order.id == order.id


def test_rate_limit_per_order_across_conversations(session):
    _order(session)
    s = settings(verification_max_attempts_per_conversation=100, verification_max_attempts_per_order=2)
    for i in range(2):
        assert verify_with_contact(session, f"web:attacker{i}", "CD-104233", "guess@example.de", NOW,
                                   s).outcome is Outcome.NOT_VERIFIED
    session.flush()
    assert verify_with_contact(session, "web:attacker9", "CD-104233", "anna@example.de", NOW,
                               s).outcome is Outcome.RATE_LIMITED
    # a different order number from the same conversations is still fine
    assert verify_with_contact(session, "web:attacker9", "CD-100001", "guess@example.de", NOW,
                               s).outcome is Outcome.NOT_VERIFIED
    assert verify_with_contact(session, "web:attacker9", "CD-104233", "anna@example.de",
                               NOW + timedelta(minutes=61), s).outcome is Outcome.VERIFIED


def test_grant_expires_after_ttl(session):
    _order(session)
    verify_with_contact(session, CONV, "CD-104233", "anna@example.de", NOW, settings(verification_ttl_minutes=30))
    session.flush()
    assert granted_order(session, CONV, "CD-104233", NOW + timedelta(minutes=29, seconds=59)) is not None
    assert granted_order(session, CONV, "CD-104233", NOW + timedelta(minutes=30)) is None
    assert granted_order(session, CONV, "CD-104233", NOW + timedelta(hours=5)) is None


def test_grant_is_per_conversation_and_per_order(session):
    order = _order(session)
    other_order = make_order(session, order.customer, number="CD-104234", contact_email="anna@example.de")
    verify_with_contact(session, CONV, "CD-104233", "anna@example.de", NOW, settings())
    session.flush()
    assert granted_order(session, OTHER, "CD-104233", NOW) is None
    assert granted_order(session, CONV, other_order.number, NOW) is None
    assert granted_order(session, CONV, None, NOW) is None


def test_identity_verification_only_for_matching_customer(session):
    order = _order(session)
    stranger = make_customer(session, name="Eve", email="eve@example.de")
    wrong = verify_with_identity(session, OTHER, "CD-104233", stranger.id, NOW, settings())
    assert wrong.outcome is Outcome.INCOMPLETE and wrong.order is None
    assert verify_with_identity(session, OTHER, "CD-104233", None, NOW, settings()).outcome is Outcome.INCOMPLETE
    assert verify_with_identity(session, OTHER, "CD-199999", order.customer_id, NOW,
                                settings()).outcome is Outcome.INCOMPLETE
    session.flush()
    assert granted_order(session, OTHER, "CD-104233", NOW) is None
    ok = verify_with_identity(session, OTHER, "cd 104233", order.customer_id, NOW, settings())
    assert (ok.outcome, ok.method, ok.order.id) == (Outcome.VERIFIED, "identity", order.id)
    session.flush()
    assert granted_order(session, OTHER, "CD-104233", NOW).id == order.id


def test_revoke_all_only_affects_that_conversation(session):
    _order(session)
    verify_with_contact(session, CONV, "CD-104233", "anna@example.de", NOW, settings())
    verify_with_contact(session, OTHER, "CD-104233", "+49 151 23456789", NOW, settings())
    session.flush()
    revoke_all(session, CONV)
    session.commit()
    assert granted_order(session, CONV, "CD-104233", NOW) is None
    assert granted_order(session, OTHER, "CD-104233", NOW) is not None
    assert session.scalar(select(func.count(VerifiedOrder.id))) == 1


def test_non_ascii_contact_email_on_order_does_not_crash(session):
    customer = make_customer(session, email="jürgen@müller.de")
    make_order(session, customer, number="CD-104240", contact_email="jürgen@müller.de", contact_phone=None)
    result = verify_with_contact(session, CONV, "CD-104240", "anna@example.de", NOW, settings())
    assert result.outcome is Outcome.NOT_VERIFIED


def test_whatsapp_phone_matching_the_order_counts_as_identity(session):
    from crm.verification.service import Outcome, granted_order, verify_with_identity
    from tests.crm.factories import make_customer, make_order

    now = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    customer = make_customer(session)
    order = make_order(session, customer, contact_phone="+4915112345678")
    session.flush()
    wrong = verify_with_identity(session, "whatsapp:+4915199999999", order.number, None, now,
                                 trusted_phone="+4915199999999")
    assert wrong.outcome is Outcome.INCOMPLETE  # falls back to asking for email/phone
    right = verify_with_identity(session, "whatsapp:+4915112345678", order.number, None, now,
                                 trusted_phone="+4915112345678")
    assert right.outcome is Outcome.VERIFIED and right.method == "phone_identity"
    assert granted_order(session, "whatsapp:+4915112345678", order.number, now) is not None
