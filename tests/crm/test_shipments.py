"""Tracking reports: warehouse, transit, customs, exceptions, delivery — in the place's local time."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from crm.shipments.service import next_milestone, tracking_report
from tests.crm.factories import add_shipment, make_customer, make_order, utc

SHANGHAI = ("Shanghai, CN", "Asia/Shanghai")
LEIPZIG = ("Leipzig, DE", "Europe/Berlin")
BERLIN = ("Berlin, DE", "Europe/Berlin")

TRANSIT = [
    ("label_created", utc(2026, 3, 2, 1, 0), *SHANGHAI),
    ("picked_up", utc(2026, 3, 2, 8, 0), *SHANGHAI),
    ("export_customs", utc(2026, 3, 3, 2, 0), *SHANGHAI),
    ("international_transit", utc(2026, 3, 3, 18, 0), *SHANGHAI),
]


def _shipped_order(session, events, *, status="shipped", **shipment_kw):
    order = make_order(session, make_customer(session), number="CD-104233", status=status,
                       placed_at=utc(2026, 3, 1, 9, 0), shipped_at=utc(2026, 3, 2, 8, 0),
                       delivered_at=shipment_kw.pop("delivered_at", None))
    add_shipment(session, order, events, **shipment_kw)
    return order


# --- not shipped yet -------------------------------------------------------------------------------------

@pytest.mark.parametrize("paid_at, now, expected", [
    (utc(2026, 3, 5, 10, 0), utc(2026, 3, 5, 12, 0), date(2026, 3, 9)),   # Thu + 2 business days = Mon
    (utc(2026, 3, 6, 10, 0), utc(2026, 3, 6, 12, 0), date(2026, 3, 10)),  # Fri -> Tue
    (utc(2026, 3, 7, 10, 0), utc(2026, 3, 7, 12, 0), date(2026, 3, 10)),  # paid on Saturday -> Tue
    (utc(2026, 3, 2, 10, 0), utc(2026, 3, 3, 12, 0), date(2026, 3, 4)),   # Mon -> Wed
    (utc(2026, 3, 2, 10, 0), utc(2026, 3, 5, 12, 0), date(2026, 3, 5)),   # overdue: today (Thu)
    (utc(2026, 3, 2, 10, 0), utc(2026, 3, 7, 12, 0), date(2026, 3, 9)),   # overdue on Sat: next Monday
    (utc(2026, 3, 2, 10, 0), utc(2026, 3, 8, 12, 0), date(2026, 3, 9)),   # overdue on Sun: next Monday
])
def test_unshipped_expected_ship_date_skips_weekends(session, paid_at, now, expected):
    order = make_order(session, make_customer(session), status="paid", placed_at=paid_at - timedelta(hours=1),
                       paid_at=paid_at)
    report = tracking_report(order, now)
    assert report.shipped is False and report.order_status == "paid"
    assert report.expected_ship_date == expected
    assert expected.weekday() < 5
    assert (report.carrier, report.tracking_number, report.eta, report.last_event) == (None, None, None, None)


def test_unpaid_order_counts_from_placement(session):
    order = make_order(session, make_customer(session), status="pending", placed_at=utc(2026, 3, 10, 9, 0))
    assert order.paid_at is None
    report = tracking_report(order, utc(2026, 3, 10, 10, 0))
    assert (report.shipped, report.order_status, report.expected_ship_date) == (False, "pending", date(2026, 3, 12))


def test_cancelled_order_has_no_expected_ship_date(session):
    order = make_order(session, make_customer(session), status="cancelled", cancelled_at=utc(2026, 3, 3, 9, 0))
    report = tracking_report(order, utc(2026, 3, 3, 10, 0))
    assert (report.shipped, report.order_status, report.expected_ship_date) == (False, "cancelled", None)


# --- moving ----------------------------------------------------------------------------------------------

def test_in_transit_reports_next_milestone_and_eta(session):
    # insert out of order: the report must still pick the latest event
    events = [TRANSIT[3], TRANSIT[0], TRANSIT[2], TRANSIT[1]]
    order = _shipped_order(session, events, estimated_delivery=date(2026, 3, 9), last_mile_carrier="DPD")
    report = tracking_report(order, utc(2026, 3, 4, 9, 0))
    assert report.shipped is True
    assert report.status_code == "international_transit"
    assert report.next_milestone == "import_customs"
    assert report.eta == date(2026, 3, 9)
    assert report.delayed is False
    assert (report.carrier, report.last_mile_carrier) == ("DHL Express", "DPD")
    assert report.tracking_url == f"https://track.example/{report.tracking_number}"
    assert (report.duties_amount, report.duties_currency, report.duties_payment_url) == (None, None, None)
    assert report.last_event.code == "international_transit"
    # 18:00 UTC in Shanghai is 02:00 the next day
    assert report.last_event.local_time.replace(tzinfo=None) == datetime(2026, 3, 4, 2, 0)


def test_stalled_or_late_parcel_is_delayed(session):
    order = _shipped_order(session, TRANSIT, estimated_delivery=date(2026, 3, 20))
    last = TRANSIT[-1][1]
    assert tracking_report(order, last + timedelta(days=4)).delayed is False
    assert tracking_report(order, last + timedelta(days=4, minutes=1)).delayed is True
    order.shipments[-1].estimated_delivery = date(2026, 3, 4)
    assert tracking_report(order, utc(2026, 3, 4, 23, 0)).delayed is False
    assert tracking_report(order, utc(2026, 3, 5, 0, 1)).delayed is True


def test_duties_due(session):
    events = TRANSIT + [
        ("import_customs", utc(2026, 3, 5, 7, 0), *LEIPZIG),
        ("duties_due", utc(2026, 3, 5, 9, 0), *LEIPZIG, "Import VAT and duties to pay"),
    ]
    order = _shipped_order(session, events, estimated_delivery=date(2026, 3, 10), duties_amount="23.45",
                           duties_payment_url="https://pay.example/duties/1")
    report = tracking_report(order, utc(2026, 3, 5, 10, 0))
    assert report.status_code == "duties_due"
    assert report.duties_amount == Decimal("23.45")
    assert report.duties_currency == "EUR"
    assert report.duties_payment_url == "https://pay.example/duties/1"
    assert report.delayed is True
    assert report.next_milestone == "import_customs"  # released once paid
    assert report.last_event.description == "Import VAT and duties to pay"


def test_duties_no_longer_shown_once_released(session):
    events = TRANSIT + [
        ("duties_due", utc(2026, 3, 5, 9, 0), *LEIPZIG),
        ("import_customs", utc(2026, 3, 6, 9, 0), *LEIPZIG),
        ("handed_to_last_mile", utc(2026, 3, 6, 15, 0), *LEIPZIG),
    ]
    order = _shipped_order(session, events, estimated_delivery=date(2026, 3, 10), duties_amount="23.45",
                           duties_payment_url="https://pay.example/duties/1")
    report = tracking_report(order, utc(2026, 3, 6, 16, 0))
    assert (report.duties_amount, report.duties_currency, report.duties_payment_url) == (None, None, None)
    assert report.next_milestone == "out_for_delivery"
    assert report.delayed is False


def test_exception(session):
    events = TRANSIT + [
        ("handed_to_last_mile", utc(2026, 3, 6, 9, 0), *LEIPZIG),
        ("out_for_delivery", utc(2026, 3, 7, 6, 0), *BERLIN),
        ("exception", utc(2026, 3, 7, 13, 0), *BERLIN, "Recipient not at home"),
    ]
    order = _shipped_order(session, events, estimated_delivery=date(2026, 3, 9))
    report = tracking_report(order, utc(2026, 3, 7, 14, 0))
    assert report.status_code == "exception"
    assert report.delayed is True
    assert report.next_milestone == "out_for_delivery"
    assert report.eta == date(2026, 3, 9)


def test_delivered_has_no_eta_and_is_not_delayed(session):
    events = TRANSIT + [
        ("import_customs", utc(2026, 3, 5, 7, 0), *LEIPZIG),
        ("handed_to_last_mile", utc(2026, 3, 6, 9, 0), *LEIPZIG),
        ("out_for_delivery", utc(2026, 3, 9, 6, 0), *BERLIN),
        ("delivered", utc(2026, 3, 9, 11, 30), *BERLIN),
    ]
    order = _shipped_order(session, events, status="delivered", estimated_delivery=date(2026, 3, 8),
                           delivered_at=utc(2026, 3, 9, 11, 30))
    report = tracking_report(order, utc(2026, 3, 20, 10, 0))  # long after eta and > 4 days of silence
    assert report.order_status == "delivered" and report.status_code == "delivered"
    assert report.eta is None
    assert report.next_milestone is None
    assert report.delayed is False
    assert report.delivered_at == utc(2026, 3, 9, 11, 30)
    assert report.last_event.local_time.replace(tzinfo=None) == datetime(2026, 3, 9, 12, 30)  # CET


def test_last_event_local_time_in_event_zone(session):
    events = [("international_transit", utc(2026, 3, 4, 23, 30), "Tokyo Narita, JP", "Asia/Tokyo")]
    order = _shipped_order(session, events)
    local = tracking_report(order, utc(2026, 3, 5, 0, 0)).last_event.local_time
    assert (local.year, local.month, local.day, local.hour, local.minute) == (2026, 3, 5, 8, 30)
    assert local.utcoffset() == timedelta(hours=9)
    assert str(local.tzinfo) == "Asia/Tokyo"
    assert tracking_report(order, utc(2026, 3, 5, 0, 0)).last_event.location == "Tokyo Narita, JP"


def test_unknown_event_zone_falls_back_to_utc(session):
    order = _shipped_order(session, [("picked_up", utc(2026, 3, 4, 23, 30), "Nowhere", "Mars/Olympus")])
    local = tracking_report(order, utc(2026, 3, 5, 0, 0)).last_event.local_time
    assert local.utcoffset() == timedelta(0) and local.hour == 23


def test_next_milestone_pure():
    class E:  # minimal stand-in for ShipmentEvent
        def __init__(self, code):
            self.code = code

    assert next_milestone([]) == "label_created"
    assert next_milestone([E("label_created"), E("picked_up")]) == "export_customs"
    assert next_milestone([E("out_for_delivery")]) == "delivered"
    assert next_milestone([E("picked_up"), E("returned_to_sender")]) is None
