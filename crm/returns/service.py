"""Return eligibility, RMA creation and refund status.

Eligibility is decided here and only here: delivered, inside the market's window counted from delivery
(inclusive of the last local day in the customer's time zone), not final sale, not already returned.
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

# Typical days from a refund's start to money on the shopper's account, by method.
REFUND_SETTLEMENT_DAYS = {"original_payment": 7, "store_credit": 1, "bank_transfer": 5}
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

    @property
    def eligible(self) -> bool:
        return self.reason is Reason.ELIGIBLE


def policy_for(session: Session, market: str) -> ReturnPolicy | None:
    return session.scalar(select(ReturnPolicy).where(ReturnPolicy.market == market))


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
    if order.status == CANCELLED:
        return Eligibility(Reason.CANCELLED)
    if order.status != DELIVERED or order.delivered_at is None:
        return Eligibility(Reason.NOT_DELIVERED)
    policy = policy_for(session, order.market)
    if policy is None:
        return Eligibility(Reason.NO_POLICY)
    deadline = return_deadline(order, policy)
    if now.astimezone(_customer_tz(order)).date() > deadline:
        return Eligibility(Reason.WINDOW_CLOSED, deadline=deadline, policy=policy)
    returned = _returned_qty(session, order)
    final_sale = [ln for ln in order.lines if ln.final_sale and not policy.final_sale_returnable]
    open_lines = [ReturnableLine(ln, ln.qty - returned.get(ln.id, 0)) for ln in order.lines
                  if ln not in final_sale and ln.qty - returned.get(ln.id, 0) > 0]
    if open_lines:
        return Eligibility(Reason.ELIGIBLE, deadline, open_lines, final_sale, policy)
    if final_sale and not any(returned.get(ln.id) for ln in order.lines):
        return Eligibility(Reason.FINAL_SALE, deadline, [], final_sale, policy)
    return Eligibility(Reason.ALREADY_RETURNED, deadline, [], final_sale, policy)


def _quantize(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-get_currency_precision(currency)))


def refund_estimate(order: Order, policy: ReturnPolicy, items: list[ReturnableLine]) -> Decimal:
    """Item value back, minus the return shipping fee when the market's policy has the customer pay it."""
    value = sum((it.line.unit_price * it.qty for it in items), Decimal("0"))
    if policy.return_shipping_paid_by == "customer":
        value -= policy.return_shipping_fee
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
                    method=(eligibility.policy.refund_methods or ["original_payment"])[0], status=REFUND_PENDING,
                    created_at=now)
    refund.events.append(RefundEvent(occurred_at=now, status=REFUND_PENDING, note="waiting for the returned parcel"))
    session.add(refund)
    return rma


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
            expected = (last + timedelta(days=REFUND_SETTLEMENT_DAYS.get(refund.method, 7))).date()
        views.append(RefundView(refund.amount, refund.currency, refund.method, refund.status, refund.created_at,
                                last, expected, refund.return_request.rma_number if refund.return_request else None))
    return views


def open_returns(session: Session, order: Order) -> list[ReturnRequest]:
    return list(session.scalars(select(ReturnRequest).where(ReturnRequest.order_id == order.id)
                                .order_by(ReturnRequest.id)))
