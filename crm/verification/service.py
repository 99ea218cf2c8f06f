"""Ownership proof before any order detail is disclosed.

Rules:
- An order is shown only to a conversation holding a live grant for it. A grant comes from the order
  number plus the email or phone on the order, or from a channel identity already linked to the order's
  customer (e.g. the WhatsApp number on the order).
- A wrong pair and a nonexistent order get the same outcome (no enumeration of order numbers).
- Failed attempts are limited per conversation and per order number within a sliding window.
"""
from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.config import Settings, get_settings
from crm.contacts import extract_email, extract_order_number, extract_phone
from crm.orders.models import Order
from crm.verification.models import VerificationAttempt, VerifiedOrder


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


def _failed_attempts(session: Session, column, value: str, since: datetime) -> int:
    stmt = select(func.count(VerificationAttempt.id)).where(
        column == value, VerificationAttempt.succeeded.is_(False), VerificationAttempt.created_at >= since
    )
    return session.scalar(stmt) or 0


def is_rate_limited(session: Session, conversation_key: str, order_number: str | None, now: datetime,
                    settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    since = now - timedelta(minutes=settings.verification_window_minutes)
    if _failed_attempts(session, VerificationAttempt.conversation_key, conversation_key, since) >= (
        settings.verification_max_attempts_per_conversation
    ):
        return True
    return bool(order_number) and _failed_attempts(
        session, VerificationAttempt.order_number, order_number, since
    ) >= settings.verification_max_attempts_per_order


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
                        now: datetime, settings: Settings | None = None) -> VerificationResult:
    """Check an (order number, email|phone) pair typed by the shopper and grant access if it matches."""
    settings = settings or get_settings()
    number = extract_order_number(order_text)
    if not number or not (extract_email(contact_text) or extract_phone(contact_text, None) or
                          any(c.isdigit() for c in contact_text or "")):
        return VerificationResult(Outcome.INCOMPLETE)
    if is_rate_limited(session, conversation_key, number, now, settings):
        return VerificationResult(Outcome.RATE_LIMITED)
    order = session.scalar(select(Order).where(Order.number == number))
    method = _contact_matches(order, contact_text) if order is not None else None
    session.add(VerificationAttempt(conversation_key=conversation_key, order_number=number,
                                    succeeded=method is not None, created_at=now))
    if method is None:
        return VerificationResult(Outcome.NOT_VERIFIED)
    _grant(session, conversation_key, order, method, now, settings)
    _link_conversation(session, conversation_key, order)
    return VerificationResult(Outcome.VERIFIED, order, method)


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
