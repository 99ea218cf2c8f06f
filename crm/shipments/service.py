"""Where a parcel is, what happens next and when it should arrive — in the place's local time."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from crm.orders.models import CANCELLED, NOT_YET_SHIPPED, Order
from crm.shipments import models as m
from crm.shipments.models import Shipment, ShipmentEvent

# A parcel not moving for this long (and not delivered) counts as delayed.
STALL_AFTER = timedelta(days=4)
# Business days between payment and hand-over to the carrier, used for unshipped orders.
HANDLING_DAYS = 2


@dataclass(frozen=True)
class EventView:
    code: str
    location: str
    local_time: datetime  # in the event place's time zone
    description: str


@dataclass(frozen=True)
class TrackingReport:
    order_number: str
    order_status: str
    shipped: bool
    carrier: str | None = None
    last_mile_carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    status_code: str | None = None
    last_event: EventView | None = None
    next_milestone: str | None = None
    eta: date | None = None
    delayed: bool = False
    duties_amount: Decimal | None = None
    duties_currency: str | None = None
    duties_payment_url: str | None = None
    expected_ship_date: date | None = None  # for orders still in the warehouse
    delivered_at: datetime | None = None


def _add_business_days(start: date, days: int) -> date:
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def next_milestone(events: list[ShipmentEvent]) -> str | None:
    """The next step of the normal cross-border path after the furthest one reached."""
    codes = {e.code for e in events}
    if m.DELIVERED in codes or m.RETURNED_TO_SENDER in codes:
        return None
    if events and events[-1].code == m.DUTIES_DUE:
        return m.IMPORT_CUSTOMS  # released by customs once duties are paid
    if events and events[-1].code == m.EXCEPTION:
        return m.OUT_FOR_DELIVERY  # carrier re-attempts delivery
    reached = [i for i, code in enumerate(m.MILESTONES) if code in codes]
    index = max(reached) + 1 if reached else 0
    return m.MILESTONES[index] if index < len(m.MILESTONES) else None


def _event_view(event: ShipmentEvent) -> EventView:
    try:
        tz = ZoneInfo(event.location_tz)
    except Exception:  # unknown zone name in carrier data: show UTC rather than fail
        tz = ZoneInfo("UTC")
    return EventView(event.code, event.location, event.occurred_at.astimezone(tz), event.description)


def tracking_report(order: Order, now: datetime) -> TrackingReport:
    if order.status in NOT_YET_SHIPPED or order.status == CANCELLED or not order.shipments:
        paid = (order.paid_at or order.placed_at).date()
        return TrackingReport(
            order_number=order.number, order_status=order.status, shipped=False,
            expected_ship_date=None if order.status == CANCELLED else max(
                # overdue: today if a business day, else the next one (never a weekend)
                _add_business_days(paid, HANDLING_DAYS), _add_business_days(now.date() - timedelta(days=1), 1)),
        )
    shipment: Shipment = order.shipments[-1]
    events = sorted(shipment.events, key=lambda e: e.occurred_at)
    last = events[-1] if events else None
    delivered = any(e.code == m.DELIVERED for e in events)
    stalled = last is not None and now - last.occurred_at > STALL_AFTER
    late = shipment.estimated_delivery is not None and shipment.estimated_delivery < now.date()
    duties_due = last is not None and last.code == m.DUTIES_DUE
    return TrackingReport(
        order_number=order.number, order_status=order.status, shipped=True, carrier=shipment.carrier,
        last_mile_carrier=shipment.last_mile_carrier, tracking_number=shipment.tracking_number,
        tracking_url=shipment.tracking_url, status_code=last.code if last else shipment.status,
        last_event=_event_view(last) if last else None, next_milestone=next_milestone(events),
        eta=None if delivered else shipment.estimated_delivery,
        delayed=not delivered and (stalled or late or (last is not None and last.code in (m.EXCEPTION, m.DUTIES_DUE))),
        duties_amount=Decimal(shipment.duties_amount) if duties_due and shipment.duties_amount else None,
        duties_currency=order.currency if duties_due else None,
        duties_payment_url=shipment.duties_payment_url if duties_due else None,
        delivered_at=order.delivered_at,
    )
