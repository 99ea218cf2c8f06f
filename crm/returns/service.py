"""Return eligibility, RMA creation, what the shopper is told about the refund, and refund status.

Eligibility is decided here and only here: delivered, inside the market's window counted from delivery
(inclusive of the last local day in the customer's time zone), not final sale, not already returned. So are
the refund terms (method, settlement time, deducted return shipping): the bot's actions only render them.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_precision
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.orders.models import CANCELLED, DELIVERED, Order, OrderLine
from crm.returns.models import (
    RMA_LABEL_ISSUED, RMA_REJECTED, REFUND_PENDING, Refund, RefundEvent, ReturnItem, ReturnPolicy, ReturnRequest,
)

# Typical days from a refund's start to money on the shopper's account, by method (others: the default).
REFUND_SETTLEMENT_DAYS = {"original_payment": 7, "store_credit": 1, "bank_transfer": 5}
DEFAULT_SETTLEMENT_DAYS = 7
DEFAULT_REFUND_METHOD = "original_payment"  # when a policy lists none
# The window a shopper is told about when the market has no policy (the EU's statutory minimum).
DEFAULT_WINDOW_DAYS = 14
LABEL_BASE_URL = "https://returns.crossdesk.example/labels/"


class Reason(enum.Enum):
    ELIGIBLE = "eligible"
    NOT_DELIVERED = "not_delivered"
    CANCELLED = "cancelled"
    WINDOW_CLOSED = "window_closed"
    FINAL_SALE = "final_sale"
    ALREADY_RETURNED = "already_returned"
    NO_POLICY = "no_policy"


@dataclass
class ReturnableLine:
    line: OrderLine
    qty: int  # still returnable


@dataclass
class Eligibility:
    reason: Reason
    deadline: date | None = None  # last day (customer's local date) a return may be started
    lines: list[ReturnableLine] = field(default_factory=list)
    final_sale_lines: list[OrderLine] = field(default_factory=list)
    policy: ReturnPolicy | None = None
    window_days: int = DEFAULT_WINDOW_DAYS  # the market's return window, for what the shopper is told

    @property
    def eligible(self) -> bool:
        return self.reason is Reason.ELIGIBLE


def policy_for(session: Session, market: str) -> ReturnPolicy | None:
    return session.scalar(select(ReturnPolicy).where(ReturnPolicy.market == market))


def window_days(policy: ReturnPolicy | None) -> int:
    return policy.window_days if policy is not None else DEFAULT_WINDOW_DAYS


def refund_method_for(policy: ReturnPolicy | None) -> str:
    """How a return is refunded: the policy's first method, else the original payment."""
    methods = policy.refund_methods if policy is not None else None
    return methods[0] if methods else DEFAULT_REFUND_METHOD


def settlement_days(method: str) -> int:
    """Typical days from a refund's start until the money arrives."""
    return REFUND_SETTLEMENT_DAYS.get(method, DEFAULT_SETTLEMENT_DAYS)


def return_shipping_fee(policy: ReturnPolicy) -> Decimal | None:
    """The return shipping deducted from the refund; None when the shop pays it (or it costs nothing)."""
    if policy.return_shipping_paid_by == "customer" and policy.return_shipping_fee:
        return policy.return_shipping_fee
    return None


def _customer_tz(order: Order) -> ZoneInfo:
    try:
        return ZoneInfo(order.customer.time_zone)
    except Exception:
        return ZoneInfo("UTC")


def return_deadline(order: Order, policy: ReturnPolicy) -> date:
    delivered_local = order.delivered_at.astimezone(_customer_tz(order)).date()
    return delivered_local + timedelta(days=policy.window_days)


def _returned_qty(session: Session, order: Order) -> dict[int, int]:
    stmt = (
        select(ReturnItem.order_line_id, func.sum(ReturnItem.qty))
        .join(ReturnRequest, ReturnRequest.id == ReturnItem.return_id)
        .where(ReturnRequest.order_id == order.id, ReturnRequest.status != RMA_REJECTED)
        .group_by(ReturnItem.order_line_id)
    )
    return {line_id: int(qty) for line_id, qty in session.execute(stmt)}


def check_eligibility(session: Session, order: Order, now: datetime) -> Eligibility:
    policy = policy_for(session, order.market)
    days = window_days(policy)
    if order.status == CANCELLED:
        return Eligibility(Reason.CANCELLED, window_days=days)
    if order.status != DELIVERED or order.delivered_at is None:
        return Eligibility(Reason.NOT_DELIVERED, window_days=days)
    if policy is None:
        return Eligibility(Reason.NO_POLICY)
    deadline = return_deadline(order, policy)
    if now.astimezone(_customer_tz(order)).date() > deadline:
        return Eligibility(Reason.WINDOW_CLOSED, deadline=deadline, policy=policy, window_days=days)
    returned = _returned_qty(session, order)
    final_sale = [ln for ln in order.lines if ln.final_sale and not policy.final_sale_returnable]
    open_lines = [ReturnableLine(ln, ln.qty - returned.get(ln.id, 0)) for ln in order.lines
                  if ln not in final_sale and ln.qty - returned.get(ln.id, 0) > 0]
    if open_lines:
        return Eligibility(Reason.ELIGIBLE, deadline, open_lines, final_sale, policy, days)
    if final_sale and not any(returned.get(ln.id) for ln in order.lines):
        return Eligibility(Reason.FINAL_SALE, deadline, [], final_sale, policy, days)
    return Eligibility(Reason.ALREADY_RETURNED, deadline, [], final_sale, policy, days)


def _quantize(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-get_currency_precision(currency)))


def refund_estimate(order: Order, policy: ReturnPolicy, items: list[ReturnableLine]) -> Decimal:
    """Item value back, minus the return shipping fee when the market's policy has the customer pay it."""
    value = sum((it.line.unit_price * it.qty for it in items), Decimal("0"))
    value -= return_shipping_fee(policy) or Decimal("0")
    return _quantize(max(value, Decimal("0")), order.currency)


class ReturnNotAllowed(Exception):
    def __init__(self, reason: Reason):
        super().__init__(reason.value)
        self.reason = reason


def create_return(session: Session, order: Order, line_ids: list[int] | None, reason: str, now: datetime) -> ReturnRequest:
    """Open an RMA for the chosen lines (all returnable lines when None) and issue its label.

    Raises ReturnNotAllowed if the order (or the chosen lines) cannot be returned. Idempotent enough for
    chat retries: the same lines cannot be returned twice because returned quantities are subtracted.
    """
    eligibility = check_eligibility(session, order, now)
    if not eligibility.eligible:
        raise ReturnNotAllowed(eligibility.reason)
    chosen = [it for it in eligibility.lines if line_ids is None or it.line.id in line_ids]
    if not chosen:
        final_ids = {ln.id for ln in eligibility.final_sale_lines}
        raise ReturnNotAllowed(Reason.FINAL_SALE if line_ids and set(line_ids) <= final_ids
                               else Reason.ALREADY_RETURNED)
    count = session.scalar(select(func.count(ReturnRequest.id))) or 0
    rma_number = f"RMA-{order.number.removeprefix('CD-')}-{count + 1:04d}"
    amount = refund_estimate(order, eligibility.policy, chosen)
    rma = ReturnRequest(
        rma_number=rma_number, order_id=order.id, status=RMA_LABEL_ISSUED, reason=(reason or "").strip()[:500],
        label_url=f"{LABEL_BASE_URL}{rma_number}.pdf", refund_amount=amount, refund_currency=order.currency,
        created_at=now, items=[ReturnItem(order_line_id=it.line.id, qty=it.qty) for it in chosen],
    )
    session.add(rma)
    session.flush()
    refund = Refund(order_id=order.id, return_id=rma.id, amount=amount, currency=order.currency,
                    method=refund_method_for(eligibility.policy), status=REFUND_PENDING,
                    created_at=now)
    refund.events.append(RefundEvent(occurred_at=now, status=REFUND_PENDING, note="waiting for the returned parcel"))
    session.add(refund)
    return rma


@dataclass(frozen=True)
class RefundQuote:
    """What the shopper is told once a return is open: where to send it, and what comes back, how and when."""

    amount: Decimal  # the refund expected for the RMA's items (return shipping already deducted)
    currency: str
    method: str  # refund method (original_payment, store_credit, ...)
    settlement_days: int  # typical days from the refund's start to money on the account
    shipping_fee: Decimal | None  # return shipping deducted from the refund; None when the shop pays it
    return_address: str
    return_carrier: str | None  # the carrier that delivered the parcel; None: any carrier
    window_days: int


def refund_quote(session: Session, order: Order, rma: ReturnRequest) -> RefundQuote:
    """The refund terms of an open return, from the market's policy. Raises ReturnNotAllowed(NO_POLICY) for
    a market without one (create_return never opens a return there)."""
    policy = policy_for(session, order.market)
    if policy is None:
        raise ReturnNotAllowed(Reason.NO_POLICY)
    method = refund_method_for(policy)
    carrier = order.shipments[-1].last_mile_carrier if order.shipments else None
    return RefundQuote(amount=rma.refund_amount, currency=rma.refund_currency, method=method,
                       settlement_days=settlement_days(method), shipping_fee=return_shipping_fee(policy),
                       return_address=policy.return_address, return_carrier=carrier or None,
                       window_days=window_days(policy))


@dataclass(frozen=True)
class RefundView:
    amount: Decimal
    currency: str
    method: str
    status: str
    started_at: datetime
    last_update: datetime
    expected_by: date | None  # None once completed or while waiting for the parcel
    rma_number: str | None


def refund_status(session: Session, order: Order) -> list[RefundView]:
    refunds = session.scalars(select(Refund).where(Refund.order_id == order.id).order_by(Refund.id)).all()
    views = []
    for refund in refunds:
        last = refund.events[-1].occurred_at if refund.events else refund.created_at
        expected = None
        if refund.status not in ("completed", "failed", REFUND_PENDING):
            expected = (last + timedelta(days=settlement_days(refund.method))).date()
        views.append(RefundView(refund.amount, refund.currency, refund.method, refund.status, refund.created_at,
                                last, expected, refund.return_request.rma_number if refund.return_request else None))
    return views


def open_returns(session: Session, order: Order) -> list[ReturnRequest]:
    return list(session.scalars(select(ReturnRequest).where(ReturnRequest.order_id == order.id)
                                .order_by(ReturnRequest.id)))
