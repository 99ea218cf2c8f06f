"""Tiny builders for CRM rows with explicit dates (tests must not depend on the seed)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from itertools import count

from sqlalchemy.orm import Session

from crm.customers.models import EMAIL, PHONE, Customer, CustomerIdentity
from crm.orders.models import Order, OrderLine
from crm.returns.models import ReturnPolicy
from crm.shipments.models import Shipment, ShipmentEvent

_seq = count(1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def make_customer(session: Session, *, name: str = "Anna Schmidt", country: str = "DE",
                  time_zone: str = "Europe/Berlin", currency: str = "EUR", language: str = "de",
                  email: str | None = None, phone: str | None = None) -> Customer:
    customer = Customer(name=name, country=country, time_zone=time_zone, currency=currency,
                        preferred_language=language, created_at=utc(2025, 1, 1))
    if email:
        customer.identities.append(CustomerIdentity(kind=EMAIL, value=email, verified=True))
    if phone:
        customer.identities.append(CustomerIdentity(kind=PHONE, value=phone, verified=True))
    session.add(customer)
    session.flush()
    return customer


# (sku, title, qty, unit_price, final_sale)
DEFAULT_LINES = [("SKU-1", "Linen shirt", 1, "49.90", False), ("SKU-2", "Canvas bag", 2, "15.00", False)]


def make_order(session: Session, customer: Customer, *, number: str | None = None, market: str = "DE",
               currency: str = "EUR", status: str = "paid", lines: list[tuple] | None = None,
               contact_email: str = "anna@example.de", contact_phone: str | None = "+4915123456789",
               placed_at: datetime = utc(2026, 3, 2, 9, 0), paid_at: datetime | None = None,
               shipped_at: datetime | None = None, delivered_at: datetime | None = None,
               cancelled_at: datetime | None = None, shipping_cost: str = "4.90", tax: str = "0",
               ship_line1: str = "Hauptstraße 5", ship_city: str = "Berlin", ship_postal_code: str = "10115",
               ship_region: str | None = None, ship_country: str | None = None) -> Order:
    number = number or f"CD-1{next(_seq):05d}"
    lines = DEFAULT_LINES if lines is None else lines
    order_lines = [OrderLine(sku=sku, title=title, qty=qty, unit_price=Decimal(price), final_sale=final)
                   for sku, title, qty, price, final in lines]
    subtotal = sum((ln.unit_price * ln.qty for ln in order_lines), Decimal("0"))
    total = subtotal + Decimal(shipping_cost) + Decimal(tax)
    if paid_at is None and status != "pending":
        paid_at = placed_at
    order = Order(
        number=number, customer_id=customer.id, market=market, currency=currency, status=status,
        contact_email=contact_email, contact_phone=contact_phone, subtotal=subtotal,
        shipping_cost=Decimal(shipping_cost), tax=Decimal(tax), total=total, placed_at=placed_at,
        paid_at=paid_at, shipped_at=shipped_at, delivered_at=delivered_at, cancelled_at=cancelled_at,
        ship_name=customer.name, ship_line1=ship_line1, ship_line2=None, ship_city=ship_city,
        ship_postal_code=ship_postal_code, ship_region=ship_region, ship_country=ship_country or market,
        lines=order_lines,
    )
    session.add(order)
    session.flush()
    return order


def add_shipment(session: Session, order: Order, events: list[tuple], *, carrier: str = "DHL Express",
                 last_mile_carrier: str | None = None, origin: str = "CN", estimated_delivery: date | None = None,
                 duties_amount: str | None = None, duties_payment_url: str | None = None,
                 tracking_number: str | None = None) -> Shipment:
    """events: (code, occurred_at, location, location_tz[, description])."""
    tracking_number = tracking_number or f"TRK{next(_seq):08d}"
    shipment = Shipment(
        order_id=order.id, carrier=carrier, last_mile_carrier=last_mile_carrier, tracking_number=tracking_number,
        tracking_url=f"https://track.example/{tracking_number}", status=events[-1][0] if events else "label_created",
        origin_country=origin, destination_country=order.ship_country, estimated_delivery=estimated_delivery,
        duties_amount=duties_amount, duties_payment_url=duties_payment_url,
        events=[ShipmentEvent(code=ev[0], occurred_at=ev[1], location=ev[2], location_tz=ev[3],
                              description=ev[4] if len(ev) > 4 else "") for ev in events],
    )
    session.add(shipment)
    session.flush()
    session.refresh(order)  # so order.shipments sees it
    return shipment


def make_policy(session: Session, *, market: str = "DE", window_days: int = 14, paid_by: str = "shop",
                fee: str = "0", final_sale_returnable: bool = False,
                refund_methods: list[str] | None = None) -> ReturnPolicy:
    policy = ReturnPolicy(market=market, window_days=window_days, final_sale_returnable=final_sale_returnable,
                          return_shipping_paid_by=paid_by, return_shipping_fee=Decimal(fee),
                          refund_methods=refund_methods or ["original_payment", "store_credit"],
                          return_address=f"Returns {market}, Lagerstraße 1, 12345 Somewhere")
    session.add(policy)
    session.flush()
    return policy
