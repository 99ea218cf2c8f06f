"""Order changes the shopper may make themselves: cancel and change the shipping address, both only
before the parcel leaves the warehouse."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.contacts import Address, AddressError, parse_address
from crm.orders.models import CANCELLED, NOT_YET_SHIPPED, PENDING, Order, OrderEvent
from crm.returns.models import REFUND_INITIATED, Refund, RefundEvent


def find_order(session: Session, number: str) -> Order | None:
    return session.scalar(select(Order).where(Order.number == number))


class CancelOutcome(enum.Enum):
    CANCELLED = "cancelled"
    ALREADY_CANCELLED = "already_cancelled"
    ALREADY_SHIPPED = "already_shipped"  # offer a return instead


@dataclass(frozen=True)
class CancelResult:
    outcome: CancelOutcome
    refund_amount: Decimal | None = None
    currency: str | None = None


def can_cancel(order: Order) -> CancelOutcome | None:
    """None if the order may still be cancelled, otherwise why not (shipped: offer a return instead)."""
    if order.status == CANCELLED:
        return CancelOutcome.ALREADY_CANCELLED
    if order.status not in NOT_YET_SHIPPED:
        return CancelOutcome.ALREADY_SHIPPED
    return None


def cancel_order(session: Session, order: Order, now: datetime, actor: str = "shopper") -> CancelResult:
    blocked = can_cancel(order)
    if blocked is not None:
        return CancelResult(blocked)
    was_paid = order.status != PENDING
    order.status = CANCELLED
    order.cancelled_at = now
    session.add(OrderEvent(order=order, kind="cancelled", actor=actor, created_at=now, detail={}))
    if not was_paid:
        return CancelResult(CancelOutcome.CANCELLED)
    refund = Refund(order_id=order.id, amount=order.total, currency=order.currency, method="original_payment",
                    status=REFUND_INITIATED, created_at=now)
    refund.events.append(RefundEvent(occurred_at=now, status=REFUND_INITIATED, note="order cancelled"))
    session.add(refund)
    return CancelResult(CancelOutcome.CANCELLED, order.total, order.currency)


class AddressChangeOutcome(enum.Enum):
    CHANGED = "changed"
    ALREADY_SHIPPED = "already_shipped"
    CANCELLED = "cancelled"
    INVALID = "invalid"


@dataclass(frozen=True)
class AddressChangeResult:
    outcome: AddressChangeOutcome
    address: Address | None = None
    error: str | None = None  # AddressError code when INVALID


def can_change_address(order: Order) -> AddressChangeOutcome | None:
    """None if the address may still change, otherwise why not."""
    if order.status == CANCELLED:
        return AddressChangeOutcome.CANCELLED
    if order.status not in NOT_YET_SHIPPED:
        return AddressChangeOutcome.ALREADY_SHIPPED
    return None


def change_shipping_address(session: Session, order: Order, address_text: str, now: datetime,
                            actor: str = "shopper") -> AddressChangeResult:
    """Validate and apply a new address in the order's destination country (duties and prices depend on it)."""
    blocked = can_change_address(order)
    if blocked:
        return AddressChangeResult(blocked)
    try:
        address = parse_address(address_text, order.ship_country)
    except AddressError as exc:
        return AddressChangeResult(AddressChangeOutcome.INVALID, error=exc.code)
    old = current_address(order)
    order.ship_line1, order.ship_line2 = address.line1, address.line2
    order.ship_city, order.ship_postal_code = address.city, address.postal_code
    order.ship_region = address.region  # never keep the old address's state/province
    session.add(OrderEvent(order=order, kind="address_changed", actor=actor, created_at=now,
                           detail={"from": old.one_line(), "to": address.one_line()}))
    return AddressChangeResult(AddressChangeOutcome.CHANGED, address=address)


def current_address(order: Order) -> Address:
    return Address(line1=order.ship_line1, line2=order.ship_line2, city=order.ship_city,
                   postal_code=order.ship_postal_code, region=order.ship_region, country=order.ship_country)
