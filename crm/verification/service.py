"""Ownership proof before any order detail is disclosed.

Rules:
- An order is shown only to a conversation holding a live grant for it. A grant comes from the order
  number plus the email or phone on the order, or from an identity the channel vouched for on the very
  message being answered (a shop-signed identity, the WhatsApp sender's phone).
- A wrong pair and a nonexistent order get the same outcome (no enumeration of order numbers).
- Attempts are limited per conversation, per order number, per contact tried (the email or phone) and per
  client (the IP, or the shopper's phone on WhatsApp) — see crm.limits: counted atomically before checking,
  with doubling lockouts. Rotating sender ids does not help an attacker: the contact and the client stay
  the same. The contact and order lockouts are capped short (an attacker cannot lock an owner out for
  long), and an owner proving ownership by a trusted identity never meets any of these limits.
- Failures of all conversations together raise an alarm past a threshold (a distributed attack).
"""
from __future__ import annotations

import enum
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.config import Settings, get_settings
from crm.contacts import extract_email, extract_order_number, extract_phone
from crm.limits import service as limits
from crm.limits.service import Limit
from crm.orders.models import Order
from crm.verification.models import VerificationAttempt, VerifiedOrder

log = logging.getLogger("crossdesk.verification")
VERIFICATION_FAILURES = Counter("crossdesk_verification_failures_total", "Failed ownership verifications")
VERIFICATION_REFUSED = Counter("crossdesk_verification_rate_limited_total",
                               "Verification attempts refused by a limit", ["scope"])
VERIFICATION_ALARMS = Counter("crossdesk_verification_alarms_total",
                              "Windows in which failures of all conversations together passed the alarm threshold")


class Outcome(enum.Enum):
    VERIFIED = "verified"
    NOT_VERIFIED = "not_verified"  # unknown order OR wrong contact — deliberately indistinguishable
    RATE_LIMITED = "rate_limited"
    INCOMPLETE = "incomplete"  # no usable order number or contact in what was given


@dataclass(frozen=True)
class VerificationResult:
    outcome: Outcome
    order: Order | None = None
    method: str | None = None
    retry_after_s: int = 0


def _limits(settings: Settings) -> dict[str, Limit]:
    minute = 60
    long_window = settings.verification_window_minutes * minute
    owner_window = min(15 * minute, long_window)
    base = settings.verification_lockout_base_minutes * minute
    owner_cap = settings.verification_owner_lockout_cap_minutes * minute
    attacker_cap = settings.verification_attacker_lockout_cap_minutes * minute
    return {
        "conversation": Limit("verify:conversation", settings.verification_max_attempts_per_conversation,
                              long_window, base, attacker_cap),
        "client": Limit("verify:client", settings.verification_max_attempts_per_client, long_window, base,
                        attacker_cap),
        "order": Limit("verify:order", settings.verification_max_attempts_per_order, owner_window, base, owner_cap),
        "contact": Limit("verify:contact", settings.verification_max_attempts_per_contact, owner_window, base,
                         owner_cap),
    }


def contact_key(contact_text: str) -> str | None:
    """The contact an attempt tries, in a form an attacker cannot vary: an email in normal form, a phone as
    its last nine digits (the same for "+49 151 …", "0049151…" and "0151 …")."""
    email = extract_email(contact_text or "")
    if email:
        return "email:" + email.lower()
    digits = re.sub(r"\D", "", contact_text or "")
    return "phone:" + digits[-9:] if len(digits) >= 6 else None


def _subjects(settings: Settings, conversation_key: str, number: str, contact: str | None,
              client: str | None) -> list[tuple[Limit, str]]:
    lim = _limits(settings)
    return [(lim["conversation"], conversation_key), (lim["order"], number),
            (lim["contact"], limits.hashed(contact) if contact else ""),
            (lim["client"], limits.hashed(client) if client else "")]


def _contact_matches(order: Order, contact_text: str) -> str | None:
    """Which factor matched ('email' | 'phone'), comparing in normalised form and in constant time."""
    email = extract_email(contact_text)
    if email:
        # bytes: compare_digest raises TypeError on non-ASCII str (e.g. an IDN contact email on the order)
        return "email" if hmac.compare_digest(email.encode(), (order.contact_email or "").lower().encode()) else None
    phone = extract_phone(contact_text, region=order.market)
    if phone and order.contact_phone:
        return "phone" if hmac.compare_digest(phone.encode(), order.contact_phone.encode()) else None
    return None


def _grant(session: Session, conversation_key: str, order: Order, method: str, now: datetime,
           settings: Settings) -> None:
    session.add(VerifiedOrder(
        conversation_key=conversation_key, order_id=order.id, method=method, verified_at=now,
        expires_at=now + timedelta(minutes=settings.verification_ttl_minutes),
    ))


def verify_with_contact(session: Session, conversation_key: str, order_text: str, contact_text: str,
                        now: datetime, settings: Settings | None = None,
                        client: str | None = None) -> VerificationResult:
    """Check an (order number, email|phone) pair typed by the shopper and grant access if it matches.

    ``client`` is what the requester cannot rotate cheaply (the IP, the WhatsApp phone); the attempt counts
    against it, the conversation, the order number and the contact before the pair is even looked at."""
    settings = settings or get_settings()
    number = extract_order_number(order_text)
    if not number or not (extract_email(contact_text) or extract_phone(contact_text, None) or
                          any(c.isdigit() for c in contact_text or "")):
        return VerificationResult(Outcome.INCOMPLETE)
    subjects = _subjects(settings, conversation_key, number, contact_key(contact_text), client)
    check = limits.attempt(session, subjects, now)
    if not check.allowed:
        for scope in check.blocked_by:
            VERIFICATION_REFUSED.labels(scope).inc()
        return VerificationResult(Outcome.RATE_LIMITED, retry_after_s=check.retry_after_s)
    order = session.scalar(select(Order).where(Order.number == number))
    method = _contact_matches(order, contact_text) if order is not None else None
    session.add(VerificationAttempt(conversation_key=conversation_key, order_number=number,
                                    succeeded=method is not None, created_at=now))
    if method is None:
        _count_failure(session, settings, now)
        return VerificationResult(Outcome.NOT_VERIFIED)
    limits.refund(session, subjects, now)
    _grant(session, conversation_key, order, method, now, settings)
    _link_conversation(session, conversation_key, order)
    return VerificationResult(Outcome.VERIFIED, order, method)


def _count_failure(session: Session, settings: Settings, now: datetime) -> None:
    VERIFICATION_FAILURES.inc()
    window = settings.verification_window_minutes * 60
    if limits.tally(session, "verify:global", "all", window, now) == settings.verification_global_alarm_failures:
        VERIFICATION_ALARMS.inc()
        log.error("ALARM: %d failed ownership verifications in %d minutes across all conversations — a "
                  "distributed guessing attack is likely", settings.verification_global_alarm_failures, window // 60)


def is_rate_limited(session: Session, conversation_key: str, order_number: str | None, now: datetime,
                    settings: Settings | None = None) -> bool:
    """Whether this conversation (or this order number) is locked out right now (read only)."""
    settings = settings or get_settings()
    lim = _limits(settings)
    for limit, key in ((lim["conversation"], conversation_key), (lim["order"], order_number or "")):
        if key and limits.count(session, limit.scope, key, limit.window_s, now) >= limit.max_attempts:
            return True
    return False


def _link_conversation(session: Session, conversation_key: str, order: Order) -> None:
    """A verified order tells us who an anonymous (e.g. web) conversation belongs to."""
    from crm.conversations.service import find_by_key

    conv = find_by_key(session, conversation_key)
    if conv is not None and conv.customer_id is None:
        conv.customer_id = order.customer_id


def verify_with_identity(session: Session, conversation_key: str, order_text: str, customer_id: int | None,
                         now: datetime, settings: Settings | None = None,
                         trusted_phone: str | None = None) -> VerificationResult:
    """A conversation whose trusted channel identity is the order's customer — or whose trusted phone
    (WhatsApp sender) is the phone on the order — needs no second factor."""
    settings = settings or get_settings()
    number = extract_order_number(order_text)
    if not number or (customer_id is None and not trusted_phone):
        return VerificationResult(Outcome.INCOMPLETE)
    order = session.scalar(select(Order).where(Order.number == number))
    if order is None:
        return VerificationResult(Outcome.INCOMPLETE)  # fall through to asking for email/phone
    if customer_id is not None and order.customer_id == customer_id:
        method = "identity"
    elif trusted_phone and order.contact_phone and hmac.compare_digest(trusted_phone.encode(),
                                                                       order.contact_phone.encode()):
        method = "phone_identity"
    else:
        return VerificationResult(Outcome.INCOMPLETE)
    _grant(session, conversation_key, order, method, now, settings)
    return VerificationResult(Outcome.VERIFIED, order, method)


def granted_order(session: Session, conversation_key: str, order_number: str | None, now: datetime) -> Order | None:
    """The order if this conversation holds a live grant for it, else None."""
    number = extract_order_number(order_number or "")
    if not number:
        return None
    stmt = (
        select(Order)
        .join(VerifiedOrder, VerifiedOrder.order_id == Order.id)
        .where(Order.number == number, VerifiedOrder.conversation_key == conversation_key,
               VerifiedOrder.expires_at > now)
        .limit(1)
    )
    return session.scalar(stmt)


def revoke_all(session: Session, conversation_key: str) -> None:
    """End of session: the shopper must verify again."""
    for grant in session.scalars(select(VerifiedOrder).where(VerifiedOrder.conversation_key == conversation_key)):
        session.delete(grant)
