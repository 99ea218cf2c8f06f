"""Return eligibility (window in the customer's time zone), RMA creation, refund estimates and status."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm.returns.models import Refund, RefundEvent, ReturnRequest
from crm.returns.service import (
    DEFAULT_WINDOW_DAYS, Reason, RefundQuote, ReturnableLine, ReturnNotAllowed, check_eligibility, create_return,
    open_returns, refund_estimate, refund_quote, refund_status, return_deadline, settlement_days,
)
from tests.crm.factories import add_shipment, make_customer, make_order, make_policy, utc

MIXED = [("SKU-1", "Linen shirt", 1, "49.90", False), ("SKU-2", "Canvas bag", 2, "15.00", False),
         ("SKU-3", "Outlet socks", 3, "4.00", True)]


def _delivered(session, *, tz="Europe/Berlin", market="DE", currency="EUR", lines=None,
               delivered_at=utc(2026, 3, 1, 22, 30), number="CD-104233", status="delivered"):
    customer = make_customer(session, time_zone=tz, country=market, currency=currency)
    return make_order(session, customer, number=number, market=market, currency=currency, status=status,
                      lines=lines, placed_at=utc(2026, 2, 20, 9, 0), shipped_at=utc(2026, 2, 23, 9, 0),
                      delivered_at=delivered_at)


# --- the window, in the customer's local calendar -----------------------------------------------------------

def test_window_edges_in_berlin(session):
    # delivered 2026-03-01 23:30 Berlin time (22:30 UTC): local delivery day is March 1st
    make_policy(session, market="DE", window_days=14)
    order = _delivered(session, delivered_at=utc(2026, 3, 1, 22, 30))
    last_minute = utc(2026, 3, 15, 22, 59)   # 2026-03-15 23:59 Europe/Berlin
    midnight = utc(2026, 3, 15, 23, 0)       # 2026-03-16 00:00 Europe/Berlin
    ok = check_eligibility(session, order, last_minute)
    assert ok.reason is Reason.ELIGIBLE and ok.eligible
    assert ok.deadline == date(2026, 3, 15)
    closed = check_eligibility(session, order, midnight)
    assert closed.reason is Reason.WINDOW_CLOSED and not closed.eligible
    assert closed.deadline == date(2026, 3, 15) and closed.lines == []


def test_window_uses_local_date_not_utc_date_in_los_angeles(session):
    # 2026-03-02 05:00 UTC is still March 1st, 21:00 in Los Angeles
    policy = make_policy(session, market="US", window_days=14, paid_by="customer", fee="7.50")
    order = _delivered(session, tz="America/Los_Angeles", market="US", currency="USD",
                       delivered_at=utc(2026, 3, 2, 5, 0))
    assert return_deadline(order, policy) == date(2026, 3, 15)
    # 2026-03-16 06:00 UTC = 2026-03-15 23:00 PDT (DST began on March 8th): still open
    assert check_eligibility(session, order, utc(2026, 3, 16, 6, 0)).reason is Reason.ELIGIBLE
    # 2026-03-16 07:00 UTC = 2026-03-16 00:00 PDT: closed, although the UTC date did not change
    assert check_eligibility(session, order, utc(2026, 3, 16, 7, 0)).reason is Reason.WINDOW_CLOSED


def test_unknown_customer_zone_falls_back_to_utc(session):
    make_policy(session, market="DE", window_days=14)
    order = _delivered(session, tz="Not/AZone", delivered_at=utc(2026, 3, 1, 22, 30))
    assert check_eligibility(session, order, utc(2026, 3, 15, 23, 59)).reason is Reason.ELIGIBLE
    assert check_eligibility(session, order, utc(2026, 3, 16, 0, 0)).reason is Reason.WINDOW_CLOSED


# --- what can be returned -----------------------------------------------------------------------------------

def test_final_sale_lines_excluded(session):
    make_policy(session, market="DE")
    order = _delivered(session, lines=MIXED)
    e = check_eligibility(session, order, utc(2026, 3, 5))
    assert e.reason is Reason.ELIGIBLE
    assert [(rl.line.sku, rl.qty) for rl in e.lines] == [("SKU-1", 1), ("SKU-2", 2)]
    assert [ln.sku for ln in e.final_sale_lines] == ["SKU-3"]


def test_final_sale_returnable_policy_includes_them(session):
    make_policy(session, market="DE", final_sale_returnable=True)
    order = _delivered(session, lines=MIXED)
    e = check_eligibility(session, order, utc(2026, 3, 5))
    assert [rl.line.sku for rl in e.lines] == ["SKU-1", "SKU-2", "SKU-3"] and e.final_sale_lines == []


def test_all_final_sale(session):
    make_policy(session, market="DE")
    order = _delivered(session, lines=[("SKU-3", "Outlet socks", 3, "4.00", True)])
    e = check_eligibility(session, order, utc(2026, 3, 5))
    assert e.reason is Reason.FINAL_SALE and e.lines == [] and [ln.sku for ln in e.final_sale_lines] == ["SKU-3"]
    with pytest.raises(ReturnNotAllowed) as exc:
        create_return(session, order, None, "too small", utc(2026, 3, 5))
    assert exc.value.reason is Reason.FINAL_SALE


@pytest.mark.parametrize("status, reason", [
    ("paid", Reason.NOT_DELIVERED), ("processing", Reason.NOT_DELIVERED), ("shipped", Reason.NOT_DELIVERED),
    ("cancelled", Reason.CANCELLED),
])
def test_not_delivered_or_cancelled(session, status, reason):
    make_policy(session, market="DE")
    order = _delivered(session, status=status, delivered_at=None)
    assert check_eligibility(session, order, utc(2026, 3, 5)).reason is reason
    with pytest.raises(ReturnNotAllowed) as exc:
        create_return(session, order, None, "changed my mind", utc(2026, 3, 5))
    assert exc.value.reason is reason


def test_no_policy_for_market(session):
    make_policy(session, market="FR")
    order = _delivered(session)
    assert check_eligibility(session, order, utc(2026, 3, 5)).reason is Reason.NO_POLICY


def test_window_closed_refuses_create_return(session):
    make_policy(session, market="DE", window_days=14)
    order = _delivered(session)
    with pytest.raises(ReturnNotAllowed) as exc:
        create_return(session, order, None, "late", utc(2026, 4, 1))
    assert exc.value.reason is Reason.WINDOW_CLOSED
    assert session.scalars(select(ReturnRequest)).all() == []


# --- creating returns ---------------------------------------------------------------------------------------

def test_create_return_all_lines_then_already_returned(session):
    make_policy(session, market="DE", paid_by="shop", refund_methods=["store_credit", "original_payment"])
    order = _delivered(session, lines=MIXED)
    now = utc(2026, 3, 5, 10, 0)
    rma = create_return(session, order, None, "  too big  ", now)
    session.commit()
    assert rma.rma_number == "RMA-104233-0001"
    assert rma.label_url == "https://returns.crossdesk.example/labels/RMA-104233-0001.pdf"
    assert (rma.status, rma.reason, rma.refund_amount, rma.refund_currency) == (
        "label_issued", "too big", Decimal("79.90"), "EUR")
    assert sorted((it.order_line.sku, it.qty) for it in rma.items) == [("SKU-1", 1), ("SKU-2", 2)]
    refund = session.scalar(select(Refund))
    assert (refund.return_id, refund.amount, refund.method, refund.status) == (
        rma.id, Decimal("79.90"), "store_credit", "pending")
    assert [(ev.status, ev.occurred_at) for ev in session.scalars(select(RefundEvent))] == [("pending", now)]

    e = check_eligibility(session, order, now)
    assert e.reason is Reason.ALREADY_RETURNED and e.lines == []
    with pytest.raises(ReturnNotAllowed) as exc:
        create_return(session, order, None, "again", now)
    assert exc.value.reason is Reason.ALREADY_RETURNED
    assert [r.rma_number for r in open_returns(session, order)] == ["RMA-104233-0001"]


def test_partial_return_leaves_rest_eligible(session):
    make_policy(session, market="DE")
    order = _delivered(session)
    shirt, bag = order.lines
    now = utc(2026, 3, 5, 10, 0)
    rma = create_return(session, order, [shirt.id], "colour", now)
    assert rma.refund_amount == Decimal("49.90")
    session.flush()
    e = check_eligibility(session, order, now)
    assert e.reason is Reason.ELIGIBLE and [(rl.line.sku, rl.qty) for rl in e.lines] == [("SKU-2", 2)]
    # asking for the returned line again is refused; the rest still works
    with pytest.raises(ReturnNotAllowed) as exc:
        create_return(session, order, [shirt.id], "again", now)
    assert exc.value.reason is Reason.ALREADY_RETURNED
    second = create_return(session, order, [bag.id], "", now)
    assert (second.rma_number, second.refund_amount) == ("RMA-104233-0002", Decimal("30.00"))
    session.flush()
    assert check_eligibility(session, order, now).reason is Reason.ALREADY_RETURNED


def test_rejected_return_frees_the_lines(session):
    make_policy(session, market="DE")
    order = _delivered(session)
    rma = create_return(session, order, None, "x", utc(2026, 3, 5))
    rma.status = "rejected"
    session.flush()
    assert check_eligibility(session, order, utc(2026, 3, 5)).reason is Reason.ELIGIBLE


def test_choosing_only_final_sale_lines(session):
    make_policy(session, market="DE")
    order = _delivered(session, lines=MIXED)
    socks = order.lines[2]
    with pytest.raises(ReturnNotAllowed) as exc:
        create_return(session, order, [socks.id], "x", utc(2026, 3, 5))
    assert exc.value.reason is Reason.FINAL_SALE


# --- refund estimates ---------------------------------------------------------------------------------------

def test_refund_estimate_minus_fee_when_customer_pays(session):
    policy = make_policy(session, market="GB", paid_by="customer", fee="5.95")
    order = _delivered(session, market="GB", currency="GBP", tz="Europe/London")
    items = [ReturnableLine(ln, ln.qty) for ln in order.lines]
    assert refund_estimate(order, policy, items) == Decimal("73.95")  # 49.90 + 2 x 15.00 - 5.95
    policy.return_shipping_paid_by = "shop"
    assert refund_estimate(order, policy, items) == Decimal("79.90")
    policy.return_shipping_paid_by = "customer"
    policy.return_shipping_fee = Decimal("100")
    assert refund_estimate(order, policy, items[:1]) == Decimal("0")  # never negative


def test_refund_estimate_jpy_has_no_decimals(session):
    policy = make_policy(session, market="JP", paid_by="customer", fee="500")
    order = _delivered(session, market="JP", currency="JPY", tz="Asia/Tokyo",
                       lines=[("SKU-J", "Yukata", 3, "3333.33", False)])
    amount = refund_estimate(order, policy, [ReturnableLine(order.lines[0], 3)])
    assert amount == Decimal("9500")  # 9999.99 - 500 = 9499.99 -> 9500 yen
    assert amount.as_tuple().exponent == 0
    rma = create_return(session, order, None, "", utc(2026, 3, 5))
    session.commit()
    assert rma.refund_amount == Decimal("9500") and rma.refund_currency == "JPY"


# --- what the shopper is told about the refund ---------------------------------------------------------------

def test_refund_quote_when_the_customer_pays_return_shipping(session):
    make_policy(session, market="GB", paid_by="customer", fee="5.95", window_days=28,
                refund_methods=["store_credit", "original_payment"])
    order = _delivered(session, market="GB", currency="GBP", tz="Europe/London")
    add_shipment(session, order, [("delivered", utc(2026, 3, 1, 22, 30), "Manchester, GB", "Europe/London")],
                 last_mile_carrier="Royal Mail")
    rma = create_return(session, order, None, "too big", utc(2026, 3, 5))
    session.flush()
    assert refund_quote(session, order, rma) == RefundQuote(
        amount=Decimal("73.95"), currency="GBP", method="store_credit", settlement_days=1,
        shipping_fee=Decimal("5.95"), return_address="Returns GB, Lagerstraße 1, 12345 Somewhere",
        return_carrier="Royal Mail", window_days=28)
    assert rma.refund_amount == Decimal("73.95")  # the quote says what the RMA holds: fee already deducted


def test_refund_quote_when_the_shop_pays_and_defaults(session):
    policy = make_policy(session, market="DE", paid_by="shop", fee="4.90")
    order = _delivered(session)
    rma = create_return(session, order, None, "", utc(2026, 3, 5))
    session.flush()
    quote = refund_quote(session, order, rma)
    # the shop pays: no fee mentioned even though the policy names one; no parcel data: any carrier
    assert (quote.amount, quote.method, quote.settlement_days, quote.shipping_fee, quote.return_carrier) == (
        Decimal("79.90"), "original_payment", 7, None, None)
    policy.return_shipping_paid_by, policy.return_shipping_fee = "customer", Decimal("0")
    assert refund_quote(session, order, rma).shipping_fee is None  # free returns have no fee line
    policy.refund_methods = []
    assert refund_quote(session, order, rma).method == "original_payment"  # a policy listing no method
    policy.refund_methods = ["pix"]
    assert (refund_quote(session, order, rma).method, refund_quote(session, order, rma).settlement_days) == ("pix", 7)
    assert settlement_days("bank_transfer") == 5 and settlement_days("unheard_of") == 7


def test_refund_quote_without_a_policy_is_refused(session):
    order = _delivered(session)
    rma = ReturnRequest(rma_number="RMA-X", order_id=order.id, reason="", refund_amount=Decimal("1"),
                        refund_currency="EUR")
    with pytest.raises(ReturnNotAllowed) as exc:
        refund_quote(session, order, rma)
    assert exc.value.reason is Reason.NO_POLICY


def test_every_refusal_carries_the_markets_window(session):
    make_policy(session, market="DE", window_days=30)
    not_delivered = _delivered(session, status="shipped", delivered_at=None)
    e = check_eligibility(session, not_delivered, utc(2026, 3, 5))
    assert (e.reason, e.window_days) == (Reason.NOT_DELIVERED, 30)  # "you'll have 30 days once it arrives"
    delivered = _delivered(session, number="CD-104234")
    assert check_eligibility(session, delivered, utc(2026, 4, 30)).window_days == 30
    assert check_eligibility(session, delivered, utc(2026, 3, 5)).window_days == 30
    elsewhere = _delivered(session, market="FR", number="CD-104235", status="paid", delivered_at=None)
    e = check_eligibility(session, elsewhere, utc(2026, 3, 5))  # no FR policy: the statutory minimum
    assert (e.reason, e.window_days) == (Reason.NOT_DELIVERED, DEFAULT_WINDOW_DAYS) and DEFAULT_WINDOW_DAYS == 14


# --- refund status ------------------------------------------------------------------------------------------

def test_refund_status_views(session):
    make_policy(session, market="DE", refund_methods=["original_payment"])
    order = _delivered(session)
    now = utc(2026, 3, 5, 10, 0)
    rma = create_return(session, order, None, "x", now)
    session.flush()
    (pending,) = refund_status(session, order)
    assert (pending.status, pending.amount, pending.currency, pending.method) == (
        "pending", Decimal("79.90"), "EUR", "original_payment")
    assert (pending.rma_number, pending.expected_by, pending.started_at, pending.last_update) == (
        rma.rma_number, None, now, now)

    refund = session.scalar(select(Refund))
    refund.status = "processed"
    refund.events.append(RefundEvent(occurred_at=utc(2026, 3, 9, 23, 0), status="initiated"))
    refund.events.append(RefundEvent(occurred_at=utc(2026, 3, 10, 8, 0), status="processed"))
    credit = Refund(order_id=order.id, amount=Decimal("10.00"), currency="EUR", method="store_credit",
                    status="initiated", created_at=utc(2026, 3, 11, 9, 0),
                    events=[RefundEvent(occurred_at=utc(2026, 3, 11, 9, 0), status="initiated")])
    done = Refund(order_id=order.id, amount=Decimal("5.00"), currency="EUR", method="original_payment",
                  status="completed", created_at=utc(2026, 3, 1, 9, 0),
                  events=[RefundEvent(occurred_at=utc(2026, 3, 2, 9, 0), status="completed")])
    session.add_all([credit, done])
    session.commit()
    session.expire_all()

    views = refund_status(session, order)
    assert [(v.status, v.method, v.expected_by, v.rma_number) for v in views] == [
        ("processed", "original_payment", date(2026, 3, 17), rma.rma_number),  # last event + 7 days
        ("initiated", "store_credit", date(2026, 3, 12), None),                # + 1 day
        ("completed", "original_payment", None, None),
    ]
    assert views[0].last_update == utc(2026, 3, 10, 8, 0)
    assert views[0].started_at == now


def test_refund_status_after_cancellation(session):
    from crm.orders.service import cancel_order

    order = make_order(session, make_customer(session), status="paid")
    now = utc(2026, 3, 3, 8, 0)
    cancel_order(session, order, now)
    session.flush()
    (view,) = refund_status(session, order)
    assert (view.status, view.amount, view.expected_by, view.rma_number) == (
        "initiated", order.total, (now + timedelta(days=7)).date(), None)
