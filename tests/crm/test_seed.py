"""The demo-shop seed: volume, realism invariants, determinism and the hand-made showcase orders."""
from __future__ import annotations

import os
import time
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import phonenumbers
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from crm.customers.models import PHONE, Customer, CustomerIdentity
from crm.db import make_engine
from crm.migrate import upgrade
from crm.orders import models as om
from crm.orders.models import Order
from crm.returns import models as rm
from crm.returns.models import Refund, ReturnPolicy, ReturnRequest
from crm.demo import (
    EU,
    SHOWCASE_ORDERS,
    SeedError,
    demo_orders_for_readme,
    seed_clock,
    seed_demo_shop,
)
from crm.shipments import models as sm
from crm.shipments.models import Shipment, ShipmentEvent

ANCHOR = date(2025, 3, 14)
AS_OF = seed_clock(ANCHOR)
PG_URL = os.environ.get("CROSSDESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _fresh_sqlite(path) -> str:
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


def _seed(url: str, **kw):
    engine = make_engine(url)
    with Session(engine) as session:
        started = time.perf_counter()
        summary = seed_demo_shop(session, anchor=ANCHOR, **kw)
        session.commit()
        elapsed = time.perf_counter() - started
    return engine, summary, elapsed


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        "postgresql",  # never skipped: CI has PostgreSQL, and an unreachable one must fail
    ],
)
def seeded(request, tmp_path_factory):
    if request.param == "sqlite":
        url = _fresh_sqlite(tmp_path_factory.mktemp("seed") / "shop.db")
    else:  # the session's private, migrated schema (tests/conftest.py), emptied
        from tests.conftest import _truncate_pg

        url = request.getfixturevalue("_pg_schema_url")
        _truncate_pg(url)
    engine, summary, elapsed = _seed(url)
    yield request.param, engine, summary, elapsed
    engine.dispose()


@pytest.fixture
def session(seeded):
    with Session(seeded[1]) as s:
        yield s


def _orders(session) -> dict[str, Order]:
    rows = session.scalars(
        select(Order).options(selectinload(Order.lines), selectinload(Order.shipments).selectinload(Shipment.events))
    ).all()
    return {o.number: o for o in rows}


def test_volume_markets_and_speed(seeded, session):
    backend, _, summary, elapsed = seeded
    assert summary.customers >= 200 and summary.orders >= 1000
    assert session.scalar(select(Customer.id).order_by(Customer.id.desc()).limit(1)) is not None
    assert len(session.scalars(select(Customer)).all()) == summary.customers
    orders = session.scalars(select(Order)).all()
    assert len(orders) == summary.orders >= 1000
    assert len({o.market for o in orders}) >= 8
    assert len({o.currency for o in orders}) >= 8
    assert set(Counter(o.status for o in orders)) == set(om.STATUSES)
    if backend == "sqlite":
        assert elapsed < 10, f"seeding took {elapsed:.1f}s"


def test_order_numbers_ascending_after_showcase(session):
    rows = session.execute(select(Order.number, Order.placed_at).order_by(Order.number)).all()
    numbers = [n for n, _ in rows]
    assert numbers[: len(SHOWCASE_ORDERS)] == [o["number"] for o in SHOWCASE_ORDERS]
    assert all(n.startswith("CD-1") and len(n) == 9 for n in numbers)
    bulk = rows[len(SHOWCASE_ORDERS):]
    assert bulk[0][0] == "CD-100012"
    assert [p for _, p in bulk] == sorted(p for _, p in bulk)  # numbered in placement order


def test_every_shipment_code_and_in_transit_state(session):
    codes = set(session.scalars(select(ShipmentEvent.code).distinct()))
    assert set(sm.ALL_CODES) <= codes
    statuses = set(session.scalars(select(Shipment.status).join(Order).where(Order.status == om.SHIPPED)))
    in_transit = set(sm.ALL_CODES) - {sm.DELIVERED}
    assert in_transit <= statuses
    origins = set(session.scalars(select(Shipment.origin_country).distinct()))
    assert {"NL", "CN", "US"} <= origins
    tns = session.scalars(select(Shipment.tracking_number)).all()
    assert len(tns) == len(set(tns))


def test_timelines_ordered_and_not_in_the_future(session):
    for shp in session.scalars(select(Shipment).options(selectinload(Shipment.events))):
        times = [e.occurred_at for e in shp.events]
        assert times == sorted(times) and times[-1] <= AS_OF
        assert shp.status == shp.events[-1].code
        assert all(e.location and e.location_tz for e in shp.events)
    for o in session.scalars(select(Order)):
        for t in (o.placed_at, o.paid_at, o.shipped_at, o.delivered_at, o.cancelled_at):
            assert t is None or t <= AS_OF
        assert o.paid_at is None or o.paid_at >= o.placed_at
    for model, col in ((Refund, Refund.created_at), (ReturnRequest, ReturnRequest.created_at), (Customer, Customer.created_at)):
        assert session.scalar(select(col).order_by(col.desc()).limit(1)) <= AS_OF


def test_phones_are_valid_e164(session):
    phones = session.scalars(select(CustomerIdentity.value).where(CustomerIdentity.kind == PHONE)).all()
    phones += [p for p in session.scalars(select(Order.contact_phone)) if p]
    assert len(phones) >= 200
    for number in phones:
        parsed = phonenumbers.parse(number, None)
        assert phonenumbers.is_valid_number(parsed), number
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number
    for cust in session.scalars(select(Customer).options(selectinload(Customer.identities))):
        phone = cust.contact_values(PHONE)[0]
        assert phonenumbers.region_code_for_number(phonenumbers.parse(phone)) == cust.country


def test_totals_consistent(session):
    for o in _orders(session).values():
        minor = Decimal(1) if o.currency == "JPY" else Decimal("0.01")
        assert o.subtotal == sum((ln.unit_price * ln.qty for ln in o.lines), Decimal(0)).quantize(minor)
        assert o.total == o.subtotal + o.shipping_cost + o.tax
        assert 1 <= len(o.lines) <= 4
        if o.currency == "JPY":
            for amount in [o.total, o.tax, o.shipping_cost, *(ln.unit_price for ln in o.lines)]:
                assert amount == amount.to_integral_value()


def test_policies_returns_refunds(session):
    policies = {p.market: p for p in session.scalars(select(ReturnPolicy))}
    assert set(policies) == set(session.scalars(select(Order.market).distinct()))
    for market, p in policies.items():
        assert not p.final_sale_returnable and p.refund_methods and p.return_address
        assert p.return_shipping_paid_by in ("shop", "customer")
        if market in EU:
            assert p.window_days >= 14
    assert set(session.scalars(select(Refund.status).distinct())) == {
        rm.REFUND_PENDING, rm.REFUND_INITIATED, rm.REFUND_PROCESSED, rm.REFUND_COMPLETED, rm.REFUND_FAILED}
    refunds = session.scalars(select(Refund).options(selectinload(Refund.events))).all()
    for r in refunds:
        assert r.events and r.events[-1].status == r.status
    assert any(r.return_id is None for r in refunds) and any(r.return_id is not None for r in refunds)
    rmas = session.scalars(select(ReturnRequest).options(selectinload(ReturnRequest.items))).all()
    assert len({r.status for r in rmas}) >= 5
    for r in rmas:
        assert r.items and r.refund_currency == r.order.currency
        assert all(not item.order_line.final_sale for item in r.items)


def test_showcase_orders(session):
    orders = _orders(session)
    by_num = {spec["number"]: spec for spec in SHOWCASE_ORDERS}
    for number, spec in by_num.items():
        o = orders[number]
        assert (o.contact_email, o.contact_phone, o.market, o.status) == (
            spec["email"], spec["phone"], spec["market"], spec["status"])
        assert o.customer.preferred_language == spec["language"] and o.customer.time_zone == spec["time_zone"]
        assert set(o.customer.contact_values("email")) == {spec["email"]}
        assert set(o.customer.contact_values("phone")) == {spec["phone"]}
    local = lambda dt, tz: dt.astimezone(__import__("zoneinfo").ZoneInfo(tz)).date()  # noqa: E731

    o1 = orders["CD-100001"]
    assert o1.currency == "EUR" and len(o1.lines) >= 3
    assert sum(ln.final_sale for ln in o1.lines) == 1
    assert local(o1.delivered_at, "Europe/Berlin") == ANCHOR - timedelta(days=3)

    o2 = orders["CD-100002"]
    shp = o2.shipments[0]
    assert (o2.currency, shp.origin_country, shp.status) == ("GBP", "CN", sm.DUTIES_DUE)
    assert Decimal(shp.duties_amount) > 0 and shp.duties_payment_url.startswith("https://")
    assert sm.IMPORT_CUSTOMS in [e.code for e in shp.events]

    o3 = orders["CD-100003"]
    assert o3.currency == "USD" and o3.paid_at and not o3.shipments

    o4 = orders["CD-100004"]
    assert local(o4.delivered_at, "Europe/Paris") == ANCHOR - timedelta(days=75)
    assert (AS_OF - o4.delivered_at).days > max(p.window_days for p in session.scalars(select(ReturnPolicy)))

    o5 = orders["CD-100005"]
    assert all(ln.final_sale for ln in o5.lines)
    assert local(o5.delivered_at, "Europe/Madrid") == ANCHOR - timedelta(days=5)

    o6 = orders["CD-100006"]
    assert local(o6.delivered_at, "Europe/Berlin") == ANCHOR - timedelta(days=20)
    rma = session.scalars(select(ReturnRequest).where(ReturnRequest.order_id == o6.id)).one()
    assert rma.status == rm.RMA_RECEIVED and rma.items and rma.label_url
    assert rma.refund.status == rm.REFUND_PROCESSED
    assert [e.status for e in rma.refund.events] == [rm.REFUND_PENDING, rm.REFUND_INITIATED, rm.REFUND_PROCESSED]

    o7 = orders["CD-100007"]
    shp = o7.shipments[0]
    assert o7.currency == "JPY" and o7.total == o7.total.to_integral_value()
    assert shp.status == sm.INTERNATIONAL_TRANSIT and shp.estimated_delivery == ANCHOR + timedelta(days=4)

    o8 = orders["CD-100008"]
    assert o8.currency == "BRL" and o8.shipments[0].status == sm.EXCEPTION
    assert "address" in o8.shipments[0].events[-1].description

    o9 = orders["CD-100009"]
    shp = o9.shipments[0]
    assert o9.market in ("MX", "AU") and shp.status == sm.OUT_FOR_DELIVERY
    assert local(shp.events[-1].occurred_at, shp.events[-1].location_tz) == ANCHOR

    o10 = orders["CD-100010"]
    refund = session.scalars(select(Refund).where(Refund.order_id == o10.id)).one()
    assert o10.cancelled_at and not o10.shipments
    assert refund.return_id is None and refund.status == rm.REFUND_COMPLETED and refund.amount == o10.total

    o11 = orders["CD-100011"]
    assert o11.customer_id == o1.customer_id and o11.status == om.PROCESSING

    readme = demo_orders_for_readme(session)
    assert [r["number"] for r in readme] == list(by_num)
    assert all({"number", "email", "phone", "status", "market"} <= set(r) for r in readme)


def test_refuses_a_non_empty_database(session):
    with pytest.raises(SeedError, match="empty database"):
        seed_demo_shop(session, anchor=ANCHOR)


def test_deterministic(tmp_path):
    def snapshot(name: str):
        engine, _, _ = _seed(_fresh_sqlite(tmp_path / name))
        with Session(engine) as s:
            rows = s.execute(select(Order.number, Order.total, Order.status, Order.contact_email).order_by(Order.number)).all()
            tns = s.scalars(select(Shipment.tracking_number).order_by(Shipment.id)).all()
        engine.dispose()
        return rows, tns

    assert snapshot("a.db") == snapshot("b.db")
