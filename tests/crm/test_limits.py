"""Attempt limits (crm.limits) and the verification limits built on them: atomic under parallel attempts,
doubling lockouts with caps, and the attacks they close — on SQLite and PostgreSQL."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.config import Settings
from crm.db import make_engine
from crm.limits import service as limits
from crm.limits.service import Limit
from crm.verification.models import VerifiedOrder
from crm.verification.service import Outcome, granted_order, verify_with_contact, verify_with_identity
from tests.crm.factories import make_customer, make_order, utc

NOW = utc(2026, 3, 10, 12, 0)
LIMIT = Limit("test:thing", 3, 600, 60, 3600)


def test_parallel_attempts_cannot_slip_past_the_limit(db_url):
    engine = make_engine(db_url)
    try:
        def one_attempt(_):
            with Session(engine) as session:
                allowed = limits.attempt(session, [(LIMIT, "victim")], NOW).allowed
                session.commit()
                return allowed

        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(one_attempt, range(24)))
        assert results.count(True) == 3
        with Session(engine) as session:
            # attempts after the lock was committed are refused without counting
            assert 4 <= limits.count(session, LIMIT.scope, "victim", LIMIT.window_s, NOW) <= 24
    finally:
        engine.dispose()


def test_lockouts_double_and_stop_at_the_cap(session):
    limit = Limit("test:double", 1, 60, 60, 300)
    t = NOW
    locks = []
    for _ in range(5):
        assert limits.attempt(session, [(limit, "k")], t).allowed
        refused = limits.attempt(session, [(limit, "k")], t)
        assert not refused.allowed and refused.blocked_by == ("test:double",)
        locks.append(refused.retry_after_s)
        t += timedelta(seconds=refused.retry_after_s + 60)  # wait out the lock and the window
    assert locks == [61, 121, 241, 301, 301]
    # a day of quiet forgets the strikes
    assert limits.attempt(session, [(limit, "k")], t + timedelta(days=2)).allowed
    assert limits.attempt(session, [(limit, "k")], t + timedelta(days=2)).retry_after_s == 61


def test_refund_gives_a_success_back(session):
    for _ in range(3):
        assert limits.attempt(session, [(LIMIT, "owner")], NOW).allowed
        limits.refund(session, [(LIMIT, "owner")], NOW)
    assert limits.count(session, LIMIT.scope, "owner", LIMIT.window_s, NOW) == 0


def _settings(**overrides) -> Settings:
    base = dict(database_url="sqlite://", verification_max_attempts_per_conversation=5,
                verification_max_attempts_per_order=10, verification_max_attempts_per_contact=5,
                verification_max_attempts_per_client=20)
    return Settings(**{**base, **overrides})


def _victim(session):
    anna = make_customer(session, email="anna@example.de", phone="+4915123456789")
    order = make_order(session, anna, number="CD-104233", market="DE", contact_email="anna@example.de",
                       contact_phone="+4915123456789")
    session.flush()
    return anna, order


def test_rotating_sender_ids_does_not_help_against_a_known_email(session):
    """The attack: the attacker knows anna@example.de and tries order numbers, each from a fresh sender id
    and a fresh IP. The contact limit stops it after five tries; the right order then is refused too."""
    _victim(session)
    s = _settings()
    outcomes = [verify_with_contact(session, f"rest:fresh-{i}", f"CD-1{i:05d}", "Anna@Example.de", NOW, s,
                                    client=f"ip:198.51.100.{i}").outcome for i in range(8)]
    assert outcomes[:5] == [Outcome.NOT_VERIFIED] * 5 and outcomes[5:] == [Outcome.RATE_LIMITED] * 3
    hit = verify_with_contact(session, "rest:fresh-99", "CD-104233", "anna@example.de", NOW, s, client="ip:203.0.113.9")
    assert hit.outcome is Outcome.RATE_LIMITED and hit.order is None
    # the same email typed differently is the same contact; a phone in any format is one contact too
    assert verify_with_contact(session, "rest:x", "CD-104233", " ANNA@example.DE ", NOW, s).outcome \
        is Outcome.RATE_LIMITED
    session.flush()
    assert session.scalar(select(func.count(VerifiedOrder.id))) == 0


def test_phone_formats_count_as_one_contact(session):
    _victim(session)
    s = _settings(verification_max_attempts_per_contact=3)
    for i, phone in enumerate(["+49 151 23456789", "0049 151 23456789", "0151/23456789"]):
        assert verify_with_contact(session, f"rest:p{i}", f"CD-10000{i}", phone, NOW, s).outcome \
            is Outcome.NOT_VERIFIED
    assert verify_with_contact(session, "rest:p9", "CD-104233", "01512 3456789", NOW, s).outcome \
        is Outcome.RATE_LIMITED


def test_one_client_cannot_spray_many_contacts(session):
    _victim(session)
    s = _settings(verification_max_attempts_per_client=4)
    for i in range(4):
        assert verify_with_contact(session, f"web:s{i}", "CD-104233", f"guess{i}@example.de", NOW, s,
                                   client="ip:198.51.100.7").outcome is Outcome.NOT_VERIFIED
    assert verify_with_contact(session, "web:s9", "CD-104233", "anna@example.de", NOW, s,
                               client="ip:198.51.100.7").outcome is Outcome.RATE_LIMITED
    # the owner, from her own connection, is not affected by that client's lock
    assert verify_with_contact(session, "web:anna", "CD-104233", "anna@example.de", NOW, s,
                               client="ip:203.0.113.50").outcome is Outcome.VERIFIED


def test_a_lockout_cannot_keep_the_owner_out_for_long(session):
    _victim(session)
    s = _settings()
    t = NOW
    for round_ in range(6):  # an attacker keeps failing against Anna's email, round after round
        for i in range(6):
            verify_with_contact(session, f"rest:a{round_}-{i}", "CD-100001", "anna@example.de", t, s,
                                client=f"ip:198.51.100.{round_ * 10 + i}")
        t += timedelta(minutes=31)
        # 31 minutes after the attacker's last try, the owner gets in (lock cap 30 min, window 15 min)
        owner = verify_with_contact(session, f"rest:owner{round_}", "CD-104233", "anna@example.de", t, s,
                                    client="ip:203.0.113.1")
        assert owner.outcome is Outcome.VERIFIED, round_


def test_an_owner_with_a_trusted_identity_meets_no_limit(session):
    anna, order = _victim(session)
    s = _settings()
    for i in range(12):
        verify_with_contact(session, f"rest:a{i}", "CD-104233", f"x{i}@evil.test", NOW, s, client=f"ip:10.0.0.{i}")
    assert verify_with_contact(session, "rest:z", "CD-104233", "anna@example.de", NOW, s).outcome \
        is Outcome.RATE_LIMITED  # the order itself is locked for typed contacts
    by_identity = verify_with_identity(session, "whatsapp:+4915123456789", "CD-104233", None, NOW, s,
                                       trusted_phone="+4915123456789")
    assert by_identity.outcome is Outcome.VERIFIED
    session.flush()
    assert granted_order(session, "whatsapp:+4915123456789", "CD-104233", NOW).id == order.id


def test_failures_across_all_conversations_raise_the_alarm(session, caplog):
    _victim(session)
    s = _settings(verification_global_alarm_failures=6, verification_max_attempts_per_contact=100,
                  verification_max_attempts_per_client=100, verification_max_attempts_per_order=100)
    with caplog.at_level(logging.ERROR, logger="crossdesk.verification"):
        for i in range(7):
            verify_with_contact(session, f"rest:d{i}", f"CD-1000{i:02d}", f"d{i}@example.de", NOW, s)
    alarms = [r for r in caplog.records if "ALARM" in r.getMessage()]
    assert len(alarms) == 1
