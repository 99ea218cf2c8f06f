"""Cancelling and changing the address before the parcel leaves the warehouse."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crm.orders.models import Order, OrderEvent
from crm.orders.service import (
    AddressChangeOutcome, CancelOutcome, can_cancel, can_change_address, cancel_order, change_shipping_address,
    current_address, find_order,
)
from crm.returns.models import Refund, RefundEvent
from tests.crm.factories import make_customer, make_order, utc

NOW = utc(2026, 3, 3, 8, 15)


def _reload(session, number: str) -> Order:
    session.commit()
    session.expire_all()
    return find_order(session, number)


def test_find_order(session):
    order = make_order(session, make_customer(session), number="CD-104233")
    assert find_order(session, "CD-104233").id == order.id
    assert find_order(session, "CD-999999") is None


def test_cancel_pending_order_has_no_refund(session):
    make_order(session, make_customer(session), number="CD-104233", status="pending")
    order = find_order(session, "CD-104233")
    result = cancel_order(session, order, NOW)
    assert (result.outcome, result.refund_amount, result.currency) == (CancelOutcome.CANCELLED, None, None)
    order = _reload(session, "CD-104233")
    assert order.status == "cancelled" and order.cancelled_at == NOW
    assert [(e.kind, e.actor, e.created_at) for e in order.events] == [("cancelled", "shopper", NOW)]
    assert session.scalar(select(func.count(Refund.id))) == 0


@pytest.mark.parametrize("status", ["paid", "processing"])
def test_cancel_paid_order_refunds_full_total(session, status):
    # 49.90 + 2 x 15.00 + 4.90 shipping + 7.00 tax = 91.80
    make_order(session, make_customer(session), number="CD-104233", status=status, tax="7.00")
    order = find_order(session, "CD-104233")
    result = cancel_order(session, order, NOW, actor="agent:7")
    assert result.outcome is CancelOutcome.CANCELLED
    assert result.refund_amount == Decimal("91.80") and result.currency == "EUR"
    order = _reload(session, "CD-104233")
    assert order.status == "cancelled"
    assert [(e.kind, e.actor) for e in order.events] == [("cancelled", "agent:7")]
    refund = session.scalar(select(Refund))
    assert (refund.order_id, refund.amount, refund.currency, refund.status, refund.method, refund.return_id) == (
        order.id, Decimal("91.80"), "EUR", "initiated", "original_payment", None)
    assert [(e.status, e.occurred_at) for e in session.scalars(select(RefundEvent))] == [("initiated", NOW)]


@pytest.mark.parametrize("status", ["shipped", "delivered"])
def test_cancel_after_shipment_changes_nothing(session, status):
    make_order(session, make_customer(session), number="CD-104233", status=status,
               shipped_at=utc(2026, 3, 2, 15, 0))
    order = find_order(session, "CD-104233")
    result = cancel_order(session, order, NOW)
    assert result.outcome is CancelOutcome.ALREADY_SHIPPED and result.refund_amount is None
    order = _reload(session, "CD-104233")
    assert order.status == status and order.cancelled_at is None and order.events == []
    assert session.scalar(select(func.count(Refund.id))) == 0


@pytest.mark.parametrize("status, outcome", [
    ("pending", None), ("paid", None), ("processing", None),
    ("shipped", CancelOutcome.ALREADY_SHIPPED), ("delivered", CancelOutcome.ALREADY_SHIPPED),
    ("cancelled", CancelOutcome.ALREADY_CANCELLED),
])
def test_can_cancel_before_the_parcel_leaves_like_address_changes(session, status, outcome):
    order = make_order(session, make_customer(session), number="CD-104233", status=status)
    assert can_cancel(order) is outcome
    assert (can_cancel(order) is None) == (can_change_address(order) is None)  # one boundary for both
    if outcome is not None:
        assert cancel_order(session, order, NOW).outcome is outcome


def test_cancel_already_cancelled(session):
    make_order(session, make_customer(session), number="CD-104233", status="cancelled",
               cancelled_at=utc(2026, 3, 2, 10, 0))
    order = find_order(session, "CD-104233")
    assert cancel_order(session, order, NOW).outcome is CancelOutcome.ALREADY_CANCELLED
    order = _reload(session, "CD-104233")
    assert order.cancelled_at == utc(2026, 3, 2, 10, 0) and order.events == []
    assert session.scalar(select(func.count(Refund.id))) == 0


def test_change_address_valid_writes_event_with_from_and_to(session):
    make_order(session, make_customer(session), number="CD-104233", status="processing")
    order = find_order(session, "CD-104233")
    result = change_shipping_address(session, order, "Torstraße 12, Hinterhaus, 10119 Berlin", NOW)
    assert result.outcome is AddressChangeOutcome.CHANGED and result.error is None
    assert (result.address.city, result.address.postal_code) == ("Berlin", "10119")
    order = _reload(session, "CD-104233")
    assert (order.ship_line1, order.ship_line2, order.ship_postal_code, order.ship_city, order.ship_country) == (
        "Torstraße 12", "Hinterhaus", "10119", "Berlin", "DE")
    events = session.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id)).all()
    assert len(events) == 1
    assert (events[0].kind, events[0].actor, events[0].created_at) == ("address_changed", "shopper", NOW)
    assert events[0].detail == {"from": "Hauptstraße 5, 10115 Berlin, DE",
                                "to": "Torstraße 12, Hinterhaus, 10119 Berlin, DE"}
    assert current_address(order).one_line() == "Torstraße 12, Hinterhaus, 10119 Berlin, DE"


def test_change_address_replaces_stale_region(session):
    customer = make_customer(session, country="US", time_zone="America/Los_Angeles", currency="USD")
    make_order(session, customer, number="CD-104233", market="US", currency="USD",
               ship_line1="1600 Amphitheatre Pkwy", ship_city="Mountain View", ship_postal_code="94043",
               ship_region="CA")
    order = find_order(session, "CD-104233")
    result = change_shipping_address(session, order, "350 5th Ave, New York, NY 10118", NOW)
    assert result.outcome is AddressChangeOutcome.CHANGED
    order = _reload(session, "CD-104233")
    assert (order.ship_city, order.ship_region, order.ship_postal_code) == ("New York", "NY", "10118")
    assert order.events[0].detail["to"] == "350 5th Ave, 10118 New York, NY, US"


@pytest.mark.parametrize("text, code", [
    ("Torstraße 12, Berlin", "missing_postal_code"),
    ("Torstraße 12, 1011 Berlin", "invalid_postal_code"),
    ("12, 10119 Berlin", "missing_street"),
    ("Torstraße 12, 10119", "missing_city"),
])
def test_change_address_invalid_changes_nothing(session, text, code):
    make_order(session, make_customer(session), number="CD-104233", status="paid")
    order = find_order(session, "CD-104233")
    result = change_shipping_address(session, order, text, NOW)
    assert (result.outcome, result.error, result.address) == (AddressChangeOutcome.INVALID, code, None)
    order = _reload(session, "CD-104233")
    assert (order.ship_line1, order.ship_postal_code, order.ship_city) == ("Hauptstraße 5", "10115", "Berlin")
    assert order.events == []


def test_change_address_uses_destination_country_rules(session):
    customer = make_customer(session, country="GB", time_zone="Europe/London", currency="GBP")
    make_order(session, customer, number="CD-104233", market="GB", currency="GBP", ship_line1="1 High St",
               ship_city="Leeds", ship_postal_code="LS1 1AA")
    order = find_order(session, "CD-104233")
    # a German postcode is not a UK postcode
    assert change_shipping_address(session, order, "Torstraße 12, 10119 Berlin", NOW).error == "invalid_postal_code"
    ok = change_shipping_address(session, order, "10 Downing Street, London, SW1A 2AA", NOW)
    assert ok.outcome is AddressChangeOutcome.CHANGED and order.ship_postal_code == "SW1A 2AA"


@pytest.mark.parametrize("status, outcome", [
    ("shipped", AddressChangeOutcome.ALREADY_SHIPPED),
    ("delivered", AddressChangeOutcome.ALREADY_SHIPPED),
    ("cancelled", AddressChangeOutcome.CANCELLED),
])
def test_change_address_blocked(session, status, outcome):
    make_order(session, make_customer(session), number="CD-104233", status=status)
    order = find_order(session, "CD-104233")
    result = change_shipping_address(session, order, "Torstraße 12, 10119 Berlin", NOW)
    assert result.outcome is outcome and result.address is None
    order = _reload(session, "CD-104233")
    assert order.ship_line1 == "Hauptstraße 5" and order.events == []
