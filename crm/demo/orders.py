"""The demo shop generator: parcels and their tracking timelines, the hand-made showcase orders, then the
bulk of customers, orders, returns and refunds (the package docstring says what is guaranteed)."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.customers.models import EMAIL, PHONE, Customer, CustomerIdentity
from crm.demo.catalog import CATALOGUE, PRODUCTS, Product, q, shop_price
from crm.demo.common import UTC, SeedError, _ascii, _digits, _hours, _local_window, _zone, seed_clock
from crm.demo.customers import FIRST_NAMES, LAST_NAMES, _address, _make_phone, is_valid_e164
from crm.demo.markets import EU, MARKETS, POLICIES, City, D, Market
from crm.orders import models as om
from crm.orders.models import Order, OrderEvent, OrderLine
from crm.returns import models as rm
from crm.returns.models import Refund, RefundEvent, ReturnItem, ReturnPolicy, ReturnRequest
from crm.shipments import models as sm
from crm.shipments.models import Shipment, ShipmentEvent

FIRST_BULK_NUMBER = 100012


@dataclass
class SeedSummary:
    anchor: date
    as_of: datetime
    rng_seed: int
    customers: int = 0
    identities: int = 0
    orders: int = 0
    order_lines: int = 0
    order_events: int = 0
    shipments: int = 0
    shipment_events: int = 0
    return_policies: int = 0
    returns: int = 0
    return_items: int = 0
    refunds: int = 0
    refund_events: int = 0
    markets: tuple[str, ...] = ()
    currencies: tuple[str, ...] = ()
    orders_by_status: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Parcels
# --------------------------------------------------------------------------------------------

WAREHOUSES = {
    "NL": ("Venlo fulfilment centre, NL", "Europe/Amsterdam", "Venlo, NL"),
    "CN": ("Shenzhen fulfilment centre, CN", "Asia/Shanghai", "Shenzhen, CN"),
    "US": ("Reno fulfilment centre, NV, US", "America/Los_Angeles", "Reno, NV, US"),
}
EXPORT_HUBS = {
    "NL": ("Amsterdam Schiphol Airport, NL", "Europe/Amsterdam", "AMS"),
    "CN": ("Hong Kong International Airport, HK", "Asia/Hong_Kong", "HKG"),
    "US": ("Los Angeles International Airport, US", "America/Los_Angeles", "LAX"),
}
LINEHAUL = {  # (origin, cross-border?) -> carrier
    "NL": ("PostNL International", "DHL eCommerce"),
    "CN": ("Cainiao", "YunExpress"),
    "US": ("UPS", "FedEx International"),
}
CARRIER_SLUG = lambda name: _ascii(name.replace(" ", "-"))  # noqa: E731


def _needs_customs(origin: str, market: str) -> bool:
    if origin == market:
        return False
    return not (origin == "NL" and market in EU)


def _s10(rng: random.Random, prefix: str, country: str) -> str:
    """UPU S10 item id (two letters, 8 digits, check digit, country)."""
    digits = [rng.randint(0, 9) for _ in range(8)]
    weights = (8, 6, 4, 2, 3, 5, 9, 7)
    check = 11 - sum(d * w for d, w in zip(digits, weights)) % 11
    check = 0 if check == 10 else 5 if check == 11 else check
    return f"{prefix}{''.join(map(str, digits))}{check}{country}"


def _tracking_number(rng: random.Random, carrier: str, origin: str) -> str:
    if carrier == "Cainiao":
        return "LP00" + _digits(rng, 12)
    if carrier == "YunExpress":
        return "YT" + _digits(rng, 16)
    if carrier == "UPS":
        return "1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTVWXY") for _ in range(6)) + _digits(rng, 10)
    if carrier == "FedEx International":
        return _digits(rng, 12)
    if carrier == "DHL eCommerce":
        return "GM" + _digits(rng, 18)
    return _s10(rng, rng.choice(["LX", "LY", "RR", "UV"]), origin)


@dataclass
class Ev:
    code: str
    at: datetime
    location: str
    tz: str
    description: str


@dataclass
class Route:
    carrier: str
    last_mile: str
    origin: str
    events: list[Ev]
    eta: date  # planned delivery date (destination local)
    duties: Decimal | None = None


def _build_route(rng: random.Random, t0: datetime, origin: str, market: Market, city: City,
                 goods_value: Decimal, *, duties: bool = False, duties_paid: bool = True,
                 exception: str | None = None) -> Route:
    """A complete planned timeline from label creation on (callers cut it at "now").

    exception: None | "redeliver" (failed attempt, then delivered) | "return" (sent back).
    duties_paid=False: held for duties, never paid -> returned to sender.
    """
    cc = market.country
    wh, wh_tz, pickup_loc = WAREHOUSES[origin]
    customs = _needs_customs(origin, cc)
    last_mile = rng.choice(market.last_mile)
    carrier = rng.choice(LINEHAUL[origin]) if origin != cc else last_mile
    dest = f"{city.name}, {cc}"
    evs: list[Ev] = []
    t = _local_window(t0, wh_tz, 8, 18, rng, no_sunday=True)
    evs.append(Ev(sm.LABEL_CREATED, t, wh, wh_tz, f"Shipping label created, {carrier} awaiting item"))
    t = _local_window(t + _hours(rng, 3, 26), wh_tz, 15, 20, rng, no_sunday=True)
    evs.append(Ev(sm.PICKED_UP, t, pickup_loc, wh_tz, f"Picked up by {carrier}"))
    planned_extra = timedelta(0)
    duties_amount = None
    if origin == cc:  # domestic
        t = _local_window(t + _hours(rng, 14, 40), city.tz, 7, 10, rng, no_sunday=True)
    elif not customs:  # intra-EU road linehaul
        t = t + _hours(rng, 3, 10)
        evs.append(Ev(sm.INTERNATIONAL_TRANSIT, t, "Venlo international hub, NL", "Europe/Amsterdam",
                      f"Departed hub, in transit to {cc}"))
        t = t + _hours(rng, 16, 40)
        evs.append(Ev(sm.HANDED_TO_LAST_MILE, t, f"{last_mile} depot, {dest}", city.tz,
                      f"Arrived in destination country, handed to {last_mile}"))
        t = _local_window(t + _hours(rng, 6, 30), city.tz, 7, 10, rng, no_sunday=True)
    else:
        hub, hub_tz, iata = EXPORT_HUBS[origin]
        t = t + _hours(rng, 8, 30)
        evs.append(Ev(sm.EXPORT_CUSTOMS, t, hub, hub_tz, "Export customs clearance completed"))
        t = t + _hours(rng, 4, 20)
        evs.append(Ev(sm.INTERNATIONAL_TRANSIT, t, hub, hub_tz, f"Departed {iata} on international flight"))
        long_haul = origin == "CN" or cc in ("JP", "AU", "BR")
        if long_haul and rng.random() < 0.5:
            via = {"CN": ("Leipzig/Halle Airport hub, DE", "Europe/Berlin"), "NL": ("Dubai hub, AE", "Asia/Dubai"),
                   "US": ("Miami hub, US", "America/New_York")}[origin]
            if cc not in EU and origin == "CN":
                via = (("Anchorage hub, US", "America/Anchorage") if cc in ("US", "MX", "CA")
                       else ("Doha hub, QA", "Asia/Qatar"))
            t = t + _hours(rng, 10, 26)
            evs.append(Ev(sm.INTERNATIONAL_TRANSIT, t, via[0], via[1], "In transit, connecting flight"))
        t = t + _hours(rng, 20, 70 if long_haul else 40)
        imp, imp_tz = market.import_hub
        evs.append(Ev(sm.IMPORT_CUSTOMS, t, imp, imp_tz, "Arrived at destination, import customs clearance"))
        if duties:
            duties_amount = q(goods_value * market.duties_rate + market.duties_fee, market.currency)
            t = t + _hours(rng, 3, 20)
            evs.append(Ev(sm.DUTIES_DUE, t, imp, imp_tz,
                          f"Held at customs: import duties/taxes of {duties_amount} {market.currency} due from the recipient"))
            if not duties_paid:
                t = t + timedelta(days=rng.randint(14, 21))
                evs.append(Ev(sm.RETURNED_TO_SENDER, t, imp, imp_tz,
                              "Duties not paid within the storage period, returning to sender"))
                return Route(carrier, last_mile, origin, evs, t.astimezone(_zone(city.tz)).date(), duties_amount)
            t = t + _hours(rng, 10, 60)
            planned_extra = timedelta(days=2)
        else:
            t = t + _hours(rng, 4, 30)
        evs.append(Ev(sm.HANDED_TO_LAST_MILE, t, f"{last_mile} sorting centre, {dest}", city.tz,
                      f"Customs cleared, handed to {last_mile} for delivery"))
        t = _local_window(t + _hours(rng, 8, 36), city.tz, 7, 10, rng, no_sunday=True)
    evs.append(Ev(sm.OUT_FOR_DELIVERY, t, dest, city.tz, f"Out for delivery with {last_mile}"))
    deliver_at = _local_window(t + _hours(rng, 1, 9), city.tz, 9, 20, rng)
    eta = (deliver_at - planned_extra).astimezone(_zone(city.tz)).date() + timedelta(days=rng.choice([0, 0, 1]))
    if exception:
        reason = rng.choice([
            "Delivery attempt failed: address incomplete (house/apartment number missing)",
            "Delivery attempt failed: recipient not found at address",
            "Delivery attempt failed: building not accessible, no safe place",
        ])
        evs.append(Ev(sm.EXCEPTION, deliver_at, dest, city.tz, reason))
        if exception == "return":
            t = deliver_at + timedelta(days=rng.randint(5, 9))
            evs.append(Ev(sm.RETURNED_TO_SENDER, t, f"{last_mile} depot, {dest}", city.tz,
                          "Address could not be confirmed, parcel is being returned to sender"))
            return Route(carrier, last_mile, origin, evs, eta, duties_amount)
        t = _local_window(deliver_at + _hours(rng, 16, 30), city.tz, 7, 10, rng, no_sunday=True)
        evs.append(Ev(sm.OUT_FOR_DELIVERY, t, dest, city.tz, f"Second delivery attempt with {last_mile}"))
        deliver_at = _local_window(t + _hours(rng, 1, 8), city.tz, 9, 20, rng)
    place = rng.choice(["Delivered, handed to recipient", "Delivered to front door", "Delivered to neighbour",
                        "Delivered to parcel locker"]) if cc != "JP" else "Delivered, handed to recipient"
    evs.append(Ev(sm.DELIVERED, deliver_at, dest, city.tz, place))
    return Route(carrier, last_mile, origin, evs, eta, duties_amount)


def _shift(route: Route, delta: timedelta) -> None:
    for ev in route.events:
        ev.at += delta
    route.eta += timedelta(days=delta.days)


RETURN_REASONS = (
    "Too small", "Too large", "Colour differs from the photos", "Changed my mind",
    "Arrived damaged", "Ordered two sizes, returning one", "Quality not as expected", "Arrived too late",
)


# --------------------------------------------------------------------------------------------
# Showcase orders (fixed numbers, people and contacts; dates relative to the anchor)
# --------------------------------------------------------------------------------------------

SHOWCASE_ORDERS: list[dict] = [
    {"number": "CD-100001", "name": "Anna Schmidt", "email": "anna.schmidt@example.com", "phone": "+4915112345678",
     "market": "DE", "currency": "EUR", "language": "de", "time_zone": "Europe/Berlin", "status": om.DELIVERED,
     "scenario": "Delivered 3 days ago; returnable except the final-sale line",
     "address": {"line1": "Kastanienallee 12", "line2": None, "city": "Berlin", "postal_code": "10435", "region": None},
     "lines": [("HOOD-MER-GRY", 1), ("TEE-ORG-BLK", 2), ("EAR-HOP-GLD", 1)],
     "origin": "NL", "until": sm.DELIVERED, "until_day": -3, "placed_days_ago": 8},
    {"number": "CD-100002", "name": "Oliver Bennett", "email": "oliver.bennett@example.com", "phone": "+447911234567",
     "market": "GB", "currency": "GBP", "language": "en", "time_zone": "Europe/London", "status": om.SHIPPED,
     "scenario": "Shipped from CN; held at import customs, duties due",
     "address": {"line1": "27 Oldham Street", "line2": "Flat 4", "city": "Manchester", "postal_code": "M1 1JN", "region": None},
     "lines": [("JKT-RAIN-OLV", 1), ("BAG-BKP-20L", 1)],
     "origin": "CN", "until": sm.DUTIES_DUE, "until_day": -1, "duties": True, "placed_days_ago": 9},
    {"number": "CD-100003", "name": "Emily Carter", "email": "emily.carter@example.com", "phone": "+12125550143",
     "market": "US", "currency": "USD", "language": "en", "time_zone": "America/New_York", "status": om.PROCESSING,
     "scenario": "Paid, being packed: cancellable, address changeable",
     "address": {"line1": "148 Bedford Avenue", "line2": "Apt 3C", "city": "Brooklyn", "postal_code": "11211", "region": "NY"},
     "lines": [("SNK-CNV-WHT", 1), ("SCK-WOL-3PK", 2)], "placed_days_ago": 1},
    {"number": "CD-100004", "name": "Camille Dubois", "email": "camille.dubois@example.com", "phone": "+33612345678",
     "market": "FR", "currency": "EUR", "language": "fr", "time_zone": "Europe/Paris", "status": om.DELIVERED,
     "scenario": "Delivered 75 days ago: outside every return window",
     "address": {"line1": "18 rue de la République", "line2": "Appartement 6", "city": "Lyon", "postal_code": "69002", "region": None},
     "lines": [("DRS-LIN-TER", 1), ("SCF-CSH-CML", 1)],
     "origin": "NL", "until": sm.DELIVERED, "until_day": -75, "placed_days_ago": 80},
    {"number": "CD-100005", "name": "Lucía García López", "email": "lucia.garcia@example.com", "phone": "+34612345678",
     "market": "ES", "currency": "EUR", "language": "es", "time_zone": "Europe/Madrid", "status": om.DELIVERED,
     "scenario": "Delivered 5 days ago; every line is final sale",
     "address": {"line1": "Calle de Alcalá, 85", "line2": "3º B", "city": "Madrid", "postal_code": "28009", "region": "Madrid"},
     "lines": [("SWM-BKN-TEA", 1), ("UND-BRF-3PK", 1), ("OUT-LIN-SHR", 1)],
     "origin": "NL", "until": sm.DELIVERED, "until_day": -5, "placed_days_ago": 10},
    {"number": "CD-100006", "name": "Jonas Becker", "email": "jonas.becker@example.com", "phone": "+491761234567",
     "market": "DE", "currency": "EUR", "language": "de", "time_zone": "Europe/Berlin", "status": om.DELIVERED,
     "scenario": "Delivered 20 days ago; returned (RMA received), refund processed",
     "address": {"line1": "Eppendorfer Weg 57", "line2": None, "city": "Hamburg", "postal_code": "20259", "region": None},
     "lines": [("JNS-SLM-IND", 1), ("SHR-OXF-BLU", 1)],
     "origin": "NL", "until": sm.DELIVERED, "until_day": -20, "placed_days_ago": 25},
    {"number": "CD-100007", "name": "Yuki Tanaka", "email": "yuki.tanaka@example.com", "phone": "+819012345678",
     "market": "JP", "currency": "JPY", "language": "ja", "time_zone": "Asia/Tokyo", "status": om.SHIPPED,
     "scenario": "In international transit, ETA in 4 days",
     "address": {"line1": "3-14-5 Jingumae", "line2": "Room 302", "city": "Shibuya-ku, Tokyo", "postal_code": "150-0001", "region": "Tokyo"},
     "lines": [("WCH-MIN-SLV", 1), ("WAL-LTH-BRN", 1), ("CND-SOY-CED", 2)],
     "origin": "NL", "until": sm.INTERNATIONAL_TRANSIT, "until_day": -1, "eta_days": 4, "placed_days_ago": 4},
    {"number": "CD-100008", "name": "Mariana Costa", "email": "mariana.costa@example.com", "phone": "+5511987654321",
     "market": "BR", "currency": "BRL", "language": "pt", "time_zone": "America/Sao_Paulo", "status": om.SHIPPED,
     "scenario": "Delivery exception: failed attempt, address problem",
     "address": {"line1": "Rua Augusta, 1508", "line2": "Consolação", "city": "São Paulo", "postal_code": "01304-001", "region": "SP"},
     "lines": [("EBD-ANC-BLK", 1), ("CSE-PHN-CLR", 1)],
     "origin": "CN", "until": sm.EXCEPTION, "until_day": -1, "exception": "redeliver", "placed_days_ago": 16},
    {"number": "CD-100009", "name": "Sofía Hernández Ruiz", "email": "sofia.hernandez@example.com", "phone": "+525512345678",
     "market": "MX", "currency": "MXN", "language": "es", "time_zone": "America/Mexico_City", "status": om.SHIPPED,
     "scenario": "Out for delivery today",
     "address": {"line1": "Av. Insurgentes Sur 1457", "line2": "Int. 12, Col. Insurgentes Mixcoac", "city": "Ciudad de México", "postal_code": "03920", "region": "CDMX"},
     "lines": [("YGA-MAT-CRK", 1), ("BTL-STL-750", 1)],
     "origin": "US", "until": sm.OUT_FOR_DELIVERY, "until_day": 0, "placed_days_ago": 7},
    {"number": "CD-100010", "name": "Daniel Miller", "email": "daniel.miller@example.com", "phone": "+15125550172",
     "market": "US", "currency": "USD", "language": "en", "time_zone": "America/Chicago", "status": om.CANCELLED,
     "scenario": "Cancelled before shipping; refund completed",
     "address": {"line1": "2204 South Lamar Boulevard", "line2": None, "city": "Austin", "postal_code": "78704", "region": "TX"},
     "lines": [("CHG-GAN-65W", 1), ("CBL-USB-C2M", 2)], "placed_days_ago": 6},
    {"number": "CD-100011", "name": "Anna Schmidt", "email": "anna.schmidt@example.com", "phone": "+4915112345678",
     "market": "DE", "currency": "EUR", "language": "de", "time_zone": "Europe/Berlin", "status": om.PROCESSING,
     "scenario": "Second order of the CD-100001 customer; being packed",
     "address": {"line1": "Kastanienallee 12", "line2": None, "city": "Berlin", "postal_code": "10435", "region": None},
     "lines": [("THR-WOL-OAT", 1), ("MUG-CER-SAG", 1)], "placed_days_ago": 1},
]
SHOWCASE_NUMBERS = tuple(o["number"] for o in SHOWCASE_ORDERS)
SHOWCASE_RNG_SEED = 20240611  # showcase details never change with rng_seed

_SHOWCASE_TAX = {"US": {"Brooklyn": D("0.08875"), "Austin": D("0.0825")}}


def demo_orders_for_readme(session: Session) -> list[dict]:
    """number, email, phone, status, market (and scenario) of the showcase orders, by number."""
    scenarios = {o["number"]: o["scenario"] for o in SHOWCASE_ORDERS}
    rows = session.execute(
        select(Order.number, Order.contact_email, Order.contact_phone, Order.status, Order.market)
        .where(Order.number.in_(SHOWCASE_NUMBERS))
        .order_by(Order.number)
    ).all()
    return [{"number": n, "email": e, "phone": p, "status": s, "market": m, "scenario": scenarios[n]}
            for n, e, p, s, m in rows]


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------

def _city(cc: str, name: str) -> City:
    for c in MARKETS[cc].cities:
        if c.name == name or name.endswith(c.name):
            return c
    return MARKETS[cc].cities[0]


class _Builder:
    def __init__(self, session: Session, anchor: date, rng_seed: int, summary: SeedSummary):
        self.session = session
        self.anchor = anchor
        self.as_of = seed_clock(anchor)
        self.rng = random.Random(rng_seed)
        self.summary = summary
        self.used_phones: set[str] = set()
        self.used_emails: set[str] = set()
        self.used_tracking: set[str] = set()
        self.rma_seq = 200000
        self.pending: list[tuple[Order, Refund]] = []
        self.returns: list[ReturnRequest] = []

    # ---- money / lines -----------------------------------------------------------------------
    def price_lines(self, market: Market, items: list[tuple[Product, int]], tax_rate: Decimal):
        cur = market.currency
        lines = [OrderLine(sku=p.sku, title=p.title, qty=qty, unit_price=shop_price(p.eur, cur), final_sale=p.final_sale)
                 for p, qty in items]
        subtotal = q(sum((ln.unit_price * ln.qty for ln in lines), Decimal(0)), cur)
        shipping = Decimal(0) if subtotal >= market.free_over else q(market.shipping, cur)
        tax = q((subtotal + shipping) * tax_rate, cur)
        return lines, subtotal, q(shipping, cur), tax, q(subtotal + shipping + tax, cur)

    def tracking(self, rng: random.Random, carrier: str, origin: str) -> str:
        while True:
            tn = _tracking_number(rng, carrier, origin)
            if tn not in self.used_tracking:
                self.used_tracking.add(tn)
                return tn

    def shipment_for(self, order: Order, route: Route, rng: random.Random, market: Market) -> Shipment:
        tn = self.tracking(rng, route.carrier, route.origin)
        last = route.events[-1]
        shp = Shipment(
            carrier=route.carrier, last_mile_carrier=route.last_mile,
            tracking_number=tn, tracking_url=f"https://tracking.example.com/{CARRIER_SLUG(route.carrier)}/{tn}",
            status=last.code, origin_country=route.origin, destination_country=market.country,
            estimated_delivery=None if last.code in (sm.DELIVERED, sm.RETURNED_TO_SENDER) else route.eta,
            events=[ShipmentEvent(occurred_at=e.at, code=e.code, location=e.location, location_tz=e.tz,
                                  description=e.description) for e in route.events],
        )
        if last.code == sm.DELIVERED:
            shp.estimated_delivery = route.eta
        elif last.code == sm.EXCEPTION:  # next attempt
            shp.estimated_delivery = max(route.eta, last.at.astimezone(_zone(last.tz)).date() + timedelta(days=1))
        if any(e.code == sm.DUTIES_DUE for e in route.events) and route.duties is not None:
            shp.duties_amount = str(route.duties)
            if last.code == sm.DUTIES_DUE:
                shp.duties_payment_url = f"https://pay.example.com/duties/{tn}"
        order.shipments.append(shp)
        order.shipped_at = route.events[0].at
        self.summary.shipments += 1
        self.summary.shipment_events += len(shp.events)
        return shp

    def refund(self, order: Order, amount: Decimal, start: datetime, statuses: list[tuple[str, datetime, str]],
               rr: ReturnRequest | None = None, method: str = "original_payment") -> Refund:
        start = min(start, statuses[0][1])
        ref = Refund(amount=amount, currency=order.currency, method=method, status=statuses[-1][0],
                     created_at=start, return_request=rr,
                     events=[RefundEvent(occurred_at=at, status=st, note=note) for st, at, note in statuses])
        self.pending.append((order, ref))
        self.summary.refunds += 1
        self.summary.refund_events += len(statuses)
        return ref

    # ---- customers -----------------------------------------------------------------------------
    def customer(self, name: str, cc: str, tz: str, email: str, phone: str, created_at: datetime) -> Customer:
        m = MARKETS[cc]
        cust = Customer(name=name, preferred_language=m.language, country=cc, time_zone=tz, currency=m.currency,
                        created_at=created_at)
        cust.identities = [
            CustomerIdentity(kind=EMAIL, value=email, verified=True, created_at=created_at),
            CustomerIdentity(kind=PHONE, value=phone, verified=False, created_at=created_at),
        ]
        self.summary.customers += 1
        self.summary.identities += 2
        return cust


def _refund_timeline(rng: random.Random, start: datetime, final: str, as_of: datetime) -> list[tuple[str, datetime, str]]:
    chain = {
        rm.REFUND_PENDING: [rm.REFUND_PENDING],
        rm.REFUND_INITIATED: [rm.REFUND_PENDING, rm.REFUND_INITIATED],
        rm.REFUND_PROCESSED: [rm.REFUND_PENDING, rm.REFUND_INITIATED, rm.REFUND_PROCESSED],
        rm.REFUND_COMPLETED: [rm.REFUND_PENDING, rm.REFUND_INITIATED, rm.REFUND_PROCESSED, rm.REFUND_COMPLETED],
        rm.REFUND_FAILED: [rm.REFUND_PENDING, rm.REFUND_INITIATED, rm.REFUND_FAILED],
    }[final]
    notes = {
        rm.REFUND_PENDING: "Waiting for the returned parcel",
        rm.REFUND_INITIATED: "Refund initiated",
        rm.REFUND_PROCESSED: "Sent to the payment provider",
        rm.REFUND_COMPLETED: "Payment provider confirmed the funds were released",
        rm.REFUND_FAILED: "Payment provider rejected the refund (card expired); agent follow-up needed",
    }
    out = []
    t = start
    for i, st in enumerate(chain):
        if i:
            t = t + _hours(rng, 2, 40)
        out.append((st, min(t, as_of - timedelta(minutes=len(chain) - i)), notes[st]))
    # keep strictly ordered even when clamped
    for i in range(1, len(out)):
        if out[i][1] <= out[i - 1][1]:
            out[i] = (out[i][0], out[i - 1][1] + timedelta(minutes=1), out[i][2])
    return out


def _check_empty(session: Session) -> None:
    for model, what in ((Order, "orders"), (Customer, "customers"), (ReturnPolicy, "return policies")):
        n = session.scalar(select(func.count()).select_from(model))
        if n:
            raise SeedError(f"seed_demo_shop needs an empty database, but it already holds {n} {what}; "
                            "seed a fresh, migrated database instead")


def seed_demo_shop(session: Session, *, anchor: date, customers: int = 220, orders: int = 1100,
                   rng_seed: int = 42) -> SeedSummary:
    """Insert the demo shop into an empty, migrated database; the caller commits."""
    if isinstance(anchor, datetime):
        anchor = anchor.date()
    showcase_customers = len({o["email"] for o in SHOWCASE_ORDERS})
    if orders < len(SHOWCASE_ORDERS) or customers < showcase_customers + 1:
        raise SeedError(f"need at least {len(SHOWCASE_ORDERS)} orders and {showcase_customers + 1} customers")
    _check_empty(session)
    summary = SeedSummary(anchor=anchor, as_of=seed_clock(anchor), rng_seed=rng_seed)
    b = _Builder(session, anchor, rng_seed, summary)

    for cc in MARKETS:
        days, paid_by, fee, methods, address = POLICIES[cc]
        session.add(ReturnPolicy(market=cc, window_days=days, final_sale_returnable=False,
                                 return_shipping_paid_by=paid_by, return_shipping_fee=q(D(fee), MARKETS[cc].currency),
                                 refund_methods=list(methods), return_address=address))
        summary.return_policies += 1

    show_customers, show_orders = _seed_showcase(b)
    bulk_customers, bulk_orders = _seed_bulk(b, customers - showcase_customers, orders - len(SHOWCASE_ORDERS))
    all_orders = show_orders + bulk_orders

    session.add_all(show_customers + bulk_customers)
    session.flush()
    for i in range(0, len(all_orders), 300):
        session.add_all(all_orders[i:i + 300])
        session.flush()
    # Refund has no relationship to Order (only order_id), so link it once orders have ids.
    for order, ref in b.pending:
        ref.order_id = order.id
    session.add_all(b.returns)
    session.add_all([ref for _, ref in b.pending])
    session.flush()

    summary.orders = len(all_orders)
    summary.order_lines = sum(len(o.lines) for o in all_orders)
    summary.order_events = sum(len(o.events) for o in all_orders)
    summary.markets = tuple(sorted({o.market for o in all_orders}))
    summary.currencies = tuple(sorted({o.currency for o in all_orders}))
    counts: dict[str, int] = {}
    for o in all_orders:
        counts[o.status] = counts.get(o.status, 0) + 1
    summary.orders_by_status = dict(sorted(counts.items()))
    return summary


def _new_order(b: _Builder, number: str, cust: Customer, market: Market, city: City, address: dict, name: str,
               email: str, phone: str, items, tax_rate: Decimal, placed_at: datetime) -> Order:
    lines, subtotal, shipping, tax, total = b.price_lines(market, items, tax_rate)
    return Order(
        number=number, customer=cust, market=market.country, currency=market.currency, status=om.PENDING,
        contact_email=email, contact_phone=phone, subtotal=subtotal, shipping_cost=shipping, tax=tax, total=total,
        placed_at=placed_at, ship_name=name, ship_line1=address["line1"], ship_line2=address["line2"],
        ship_city=address["city"], ship_postal_code=address["postal_code"], ship_region=address["region"],
        ship_country=market.country, lines=lines,
    )


def _seed_showcase(b: _Builder) -> tuple[list[Customer], list[Order]]:
    rng = random.Random(SHOWCASE_RNG_SEED)
    anchor, as_of = b.anchor, b.as_of
    customers: dict[str, Customer] = {}
    out: list[Order] = []
    for spec in SHOWCASE_ORDERS:
        cc = spec["market"]
        market = MARKETS[cc]
        city = _city(cc, spec["address"]["city"])
        tz = spec["time_zone"]
        placed = _local_window(datetime.combine(anchor - timedelta(days=spec["placed_days_ago"]), time(0), UTC),
                               tz, 9, 22, rng)
        if spec["email"] not in customers:
            if not is_valid_e164(spec["phone"], cc):
                raise SeedError(f"showcase phone {spec['phone']} is not a valid {cc} number")
            b.used_phones.add(spec["phone"])
            b.used_emails.add(spec["email"])
            customers[spec["email"]] = b.customer(spec["name"], cc, tz, spec["email"], spec["phone"],
                                                  placed - timedelta(days=rng.randint(30, 400), minutes=rng.randint(0, 900)))
        cust = customers[spec["email"]]
        tax_rate = _SHOWCASE_TAX.get(cc, {}).get(city.name, market.tax)
        items = [(PRODUCTS[sku], qty) for sku, qty in spec["lines"]]
        address = dict(spec["address"])
        order = _new_order(b, spec["number"], cust, market, city, address, spec["name"], spec["email"],
                           spec["phone"], items, tax_rate, placed)
        order.paid_at = placed + timedelta(minutes=rng.randint(1, 6))
        order.status = om.PAID
        number = spec["number"]
        if number == "CD-100003":
            order.status = om.PROCESSING
        elif number == "CD-100011":
            order.status = om.PROCESSING
            order.placed_at = min(order.placed_at, as_of - timedelta(hours=20))
            order.paid_at = order.placed_at + timedelta(minutes=3)
        elif number == "CD-100010":
            order.status = om.CANCELLED
            order.cancelled_at = order.paid_at + timedelta(hours=3, minutes=12)
            order.events.append(OrderEvent(kind="cancelled", actor="shopper", created_at=order.cancelled_at,
                                           detail={"reason": "Ordered by mistake", "via": "chat"}))
            start = order.cancelled_at + timedelta(minutes=2)
            timeline = [(rm.REFUND_INITIATED, start, "Refund initiated after cancellation"),
                        (rm.REFUND_PROCESSED, start + timedelta(hours=1, minutes=40), "Sent to the payment provider"),
                        (rm.REFUND_COMPLETED, start + timedelta(days=3, hours=2), "Payment provider confirmed the funds were released")]
            b.refund(order, order.total, start, timeline)
        if "until" in spec:
            route = _build_route(rng, placed + timedelta(hours=20), spec["origin"], market, city, order.subtotal,
                                 duties=spec.get("duties", False), exception=spec.get("exception"))
            idx = next(i for i, e in enumerate(route.events) if e.code == spec["until"])
            target_day = anchor + timedelta(days=spec["until_day"])
            ev_day = route.events[idx].at.astimezone(_zone(city.tz)).date()
            _shift(route, timedelta(days=(target_day - ev_day).days))
            route.events = route.events[:idx + 1]
            # the event must not lie after the seeded "now"
            overshoot = route.events[-1].at - (as_of - timedelta(minutes=20))
            if overshoot > timedelta(0):
                for e in route.events:
                    e.at -= overshoot
            if spec.get("exception"):
                route.events[-1].description = ("Delivery attempt failed: address incomplete "
                                                "(house/apartment number missing). Please confirm your address.")
            if "eta_days" in spec:
                route.eta = anchor + timedelta(days=spec["eta_days"])
            first = route.events[0].at
            order.placed_at = first - timedelta(hours=rng.randint(20, 40))
            order.paid_at = order.placed_at + timedelta(minutes=rng.randint(1, 6))
            b.shipment_for(order, route, rng, market)
            order.status = om.DELIVERED if spec["until"] == sm.DELIVERED else om.SHIPPED
            if order.status == om.DELIVERED:
                order.delivered_at = route.events[-1].at
        if number == "CD-100006":
            line = order.lines[0]
            created = order.delivered_at + timedelta(days=12, hours=3)
            received = as_of - timedelta(days=2, hours=5)
            fee = D(POLICIES[cc][2]) if POLICIES[cc][1] == "customer" else D(0)
            amount = q(line.unit_price * line.qty * (1 + tax_rate) - fee, market.currency)
            rr = ReturnRequest(rma_number="RMA-100006", order=order, status=rm.RMA_RECEIVED, reason="Too small",
                               label_url="https://returns.example.com/labels/RMA-100006.pdf", refund_amount=amount,
                               refund_currency=market.currency, created_at=created,
                               items=[ReturnItem(order_line=line, qty=line.qty)])
            b.returns.append(rr)
            b.summary.returns += 1
            b.summary.return_items += 1
            timeline = [(rm.REFUND_PENDING, created + timedelta(minutes=1), "Waiting for the returned parcel"),
                        (rm.REFUND_INITIATED, received + timedelta(hours=2), "Return received and inspected, refund initiated"),
                        (rm.REFUND_PROCESSED, as_of - timedelta(hours=20), "Sent to the payment provider")]
            b.refund(order, amount, created + timedelta(minutes=1), timeline, rr=rr)
            order.events.append(OrderEvent(kind="return_requested", actor="shopper", created_at=created,
                                           detail={"rma": "RMA-100006", "via": "chat"}))
        out.append(order)
    return list(customers.values()), out


def _pick_items(rng: random.Random) -> list[tuple[Product, int]]:
    n = rng.choices([1, 2, 3, 4], weights=[45, 30, 17, 8])[0]
    weights = [p.weight for p in CATALOGUE]
    picked: list[Product] = []
    while len(picked) < n:
        p = rng.choices(CATALOGUE, weights=weights)[0]
        if p not in picked:
            picked.append(p)
    return [(p, rng.choices([1, 2, 3], weights=[82, 14, 4])[0]) for p in picked]


# targets forced on a few bulk orders so every state exists whatever the seed
_FORCED_SHIPMENT_TARGETS = (
    sm.LABEL_CREATED, sm.PICKED_UP, sm.EXPORT_CUSTOMS, sm.INTERNATIONAL_TRANSIT, sm.IMPORT_CUSTOMS,
    sm.DUTIES_DUE, sm.HANDED_TO_LAST_MILE, sm.OUT_FOR_DELIVERY, sm.EXCEPTION, sm.RETURNED_TO_SENDER,
    sm.DELIVERED,
)
_FORCED_ORDER_STATES = (om.PENDING, om.PAID, om.PROCESSING)
_FORCED_RMA = (  # (rma status, refund status or None, age of the RMA in days)
    (rm.RMA_REQUESTED, None, 0.3), (rm.RMA_LABEL_ISSUED, rm.REFUND_PENDING, 1.5),
    (rm.RMA_IN_TRANSIT, rm.REFUND_PENDING, 3.5), (rm.RMA_RECEIVED, rm.REFUND_INITIATED, 6.5),
    (rm.RMA_RECEIVED, rm.REFUND_PROCESSED, 7.5), (rm.RMA_REFUNDED, rm.REFUND_COMPLETED, 11),
    (rm.RMA_RECEIVED, rm.REFUND_FAILED, 9), (rm.RMA_REJECTED, None, 10),
)


def _seed_bulk(b: _Builder, n_customers: int, n_orders: int) -> tuple[list[Customer], list[Order]]:
    rng, as_of = b.rng, b.as_of
    ccs = list(MARKETS)
    # --- customers, at least 2 per market, the rest by market weight
    plan_cc = [cc for cc in ccs for _ in range(2)][:n_customers]
    plan_cc += rng.choices(ccs, weights=[MARKETS[c].weight for c in ccs], k=max(0, n_customers - len(plan_cc)))
    people = []
    for cc in plan_cc:
        m = MARKETS[cc]
        city = rng.choice(m.cities)
        first = rng.choice(FIRST_NAMES[cc].split())
        last = rng.choice(LAST_NAMES[cc].split("|"))
        if cc in ("ES", "MX") or (cc == "BR" and rng.random() < 0.4):
            second = rng.choice(LAST_NAMES[cc].split("|"))
            if second != last:
                last = f"{last} {second}"
        name = f"{first} {last}"
        base = f"{_ascii(first)}.{_ascii(last.split()[0] if cc in ('ES', 'MX', 'BR') else last.replace(' ', ''))}"
        domain = rng.choice(["example.com", "example.com", "example.org", "example.net"])
        email = f"{base}@{domain}"
        while email in b.used_emails:
            email = f"{base}{rng.randint(2, 99)}@{domain}"
        b.used_emails.add(email)
        phone = _make_phone(rng, cc, city, b.used_phones)
        tz = city.tz
        people.append({"cc": cc, "city": city, "name": name, "email": email, "phone": phone, "tz": tz,
                       "address": _address(rng, cc, city), "activity": rng.paretovariate(1.6), "orders": []})

    # --- order plans: every customer gets one, the rest go to repeat buyers
    owners = list(range(len(people)))[:n_orders]
    owners += rng.choices(range(len(people)), weights=[p["activity"] for p in people], k=n_orders - len(owners))
    plans = []
    for idx in owners:
        # recent days are busier; ~120 days of history
        days_ago = min(120.0, rng.expovariate(1 / 38))
        plans.append({"who": idx, "placed": as_of - timedelta(days=days_ago), "target": None})
    forced = rng.sample(range(len(plans)), k=min(len(plans), len(_FORCED_SHIPMENT_TARGETS) * 2 + len(_FORCED_ORDER_STATES) * 2))
    targets = [t for t in _FORCED_SHIPMENT_TARGETS for _ in range(2)] + [s for s in _FORCED_ORDER_STATES for _ in range(2)]
    for i, t in zip(forced, targets):
        plans[i]["target"] = t

    orders: list[Order] = []
    for plan in plans:
        orders.append(_bulk_order(b, people[plan["who"]], plan))
    orders.sort(key=lambda o: (o.placed_at, o.contact_email))
    for i, o in enumerate(orders):
        o.number = f"CD-{FIRST_BULK_NUMBER + i}"

    customers: list[Customer] = []
    by_person: dict[int, list[Order]] = {}
    for plan, o in zip(plans, [p["order"] for p in plans]):
        by_person.setdefault(plan["who"], []).append(o)
    for i, person in enumerate(people):
        mine = by_person.get(i, [])
        first_seen = min((o.placed_at for o in mine), default=as_of - timedelta(days=30))
        created = first_seen - timedelta(days=rng.randint(0, 500), minutes=rng.randint(5, 1200))
        cust = b.customer(person["name"], person["cc"], person["tz"], person["email"], person["phone"], created)
        for o in mine:
            o.customer = cust
        customers.append(cust)

    # --- returns on delivered orders, in number order
    forced_rma = list(_FORCED_RMA)
    for o in orders:
        if o.status != om.DELIVERED:
            continue
        returnable = [ln for ln in o.lines if not ln.final_sale]
        if not returnable:
            continue
        window = POLICIES[o.market][0]
        since = (as_of - o.delivered_at).total_seconds() / 86400
        if forced_rma:
            status, ref_status, age = forced_rma[0]
            created = as_of - timedelta(days=age)
            if o.delivered_at + timedelta(hours=6) <= created <= o.delivered_at + timedelta(days=window) and rng.random() < 0.5:
                forced_rma.pop(0)
                _bulk_return(b, o, returnable, created, status, ref_status)
                continue
        if since < 0.5 or rng.random() >= 0.11 or min(window, since) < 0.5:
            continue
        created = o.delivered_at + timedelta(minutes=rng.randint(430, int((min(window, since) - 0.1) * 1440)))
        if created >= as_of:
            continue
        age = (as_of - created).total_seconds() / 86400
        if age < 1:
            status, ref_status = rm.RMA_REQUESTED, None
        elif age < 2.5:
            status, ref_status = rm.RMA_LABEL_ISSUED, rm.REFUND_PENDING
        elif age < 6:
            status, ref_status = rm.RMA_IN_TRANSIT, rm.REFUND_PENDING
        elif age < 9:
            status, ref_status = rm.RMA_RECEIVED, rng.choice([rm.REFUND_INITIATED, rm.REFUND_PROCESSED])
        else:
            status, ref_status = rm.RMA_REFUNDED, rm.REFUND_COMPLETED
        roll = rng.random()
        if status in (rm.RMA_RECEIVED, rm.RMA_REFUNDED) and roll < 0.06:
            status, ref_status = rm.RMA_REJECTED, None
        elif status == rm.RMA_RECEIVED and roll < 0.14:
            ref_status = rm.REFUND_FAILED
        _bulk_return(b, o, returnable, created, status, ref_status)
    return customers, orders


def _bulk_return(b: _Builder, o: Order, returnable: list[OrderLine], created: datetime, status: str,
                 ref_status: str | None) -> None:
    rng, as_of = b.rng, b.as_of
    market = MARKETS[o.market]
    chosen = rng.sample(returnable, k=rng.randint(1, len(returnable)))
    items = [ReturnItem(order_line=ln, qty=rng.randint(1, ln.qty)) for ln in chosen]
    goods = sum((ln.unit_price * it.qty for ln, it in zip(chosen, items)), Decimal(0))
    tax_rate = (o.tax / (o.subtotal + o.shipping_cost)) if (o.subtotal + o.shipping_cost) else Decimal(0)
    _, paid_by, fee, methods, _ = POLICIES[o.market]
    fee_d = D(fee) if paid_by == "customer" else D(0)
    amount = max(q(goods * (1 + tax_rate) - fee_d, market.currency), q(D(0), market.currency))
    b.rma_seq += 1
    rma = f"RMA-{b.rma_seq}"
    rr = ReturnRequest(rma_number=rma, order=o, status=status, reason=rng.choice(RETURN_REASONS),
                       label_url=None if status == rm.RMA_REQUESTED else f"https://returns.example.com/labels/{rma}.pdf",
                       refund_amount=amount, refund_currency=market.currency, created_at=created, items=items)
    o.events.append(OrderEvent(kind="return_requested", actor="shopper", created_at=created,
                               detail={"rma": rma, "via": rng.choice(["chat", "whatsapp", "email", "web"])}))
    if status == rm.RMA_REJECTED:
        o.events.append(OrderEvent(kind="return_rejected", actor="agent",
                                   created_at=min(created + timedelta(days=6), as_of - timedelta(hours=1)),
                                   detail={"rma": rma, "reason": "Item shows signs of wear"}))
    b.returns.append(rr)
    b.summary.returns += 1
    b.summary.return_items += len(items)
    if ref_status is not None:
        start = created + timedelta(minutes=rng.randint(1, 30))
        method = rng.choice(methods) if rng.random() < 0.2 else "original_payment"
        b.refund(o, amount, start, _refund_timeline(rng, start, ref_status, as_of), rr=rr, method=method)


def _bulk_order(b: _Builder, person: dict, plan: dict) -> Order:
    rng, as_of = b.rng, b.as_of
    cc = person["cc"]
    market = MARKETS[cc]
    city = person["city"]
    address = person["address"]
    if rng.random() < 0.12:  # gift / office address in another city of the same country
        city = rng.choice(market.cities)
        address = _address(rng, cc, city)
    tax_rate = city.tax if city.tax is not None else market.tax
    target = plan["target"]
    placed = plan["placed"]
    if target in (om.PENDING, om.PAID, om.PROCESSING):
        placed = as_of - _hours(rng, 0.3, 2.5 if target != om.PROCESSING else 20)
    placed = _local_window(placed, person["tz"], 7, 23, rng)
    if placed > as_of:
        placed -= timedelta(days=1)
    o = _new_order(b, "", None, market, city, address, person["name"], person["email"], person["phone"],
                   _pick_items(rng), tax_rate, placed)
    o.customer = None
    plan["order"] = o
    age = as_of - placed

    unpaid_p = 0.10 if cc == "BR" else 0.04
    if target == om.PENDING or (target is None and rng.random() < unpaid_p):
        if age < timedelta(hours=48):
            o.status = om.PENDING
        else:
            o.status = om.CANCELLED
            o.cancelled_at = placed + timedelta(hours=48)
            o.events.append(OrderEvent(kind="cancelled", actor="system", created_at=o.cancelled_at,
                                       detail={"reason": "Payment not completed within 48 hours"}))
        return o
    delayed = cc == "BR" and rng.random() < 0.3  # boleto / bank transfer clears later
    o.paid_at = placed + (_hours(rng, 6, 30) if delayed and target is None else timedelta(minutes=rng.randint(1, 15)))
    if target == om.PAID:
        o.paid_at = min(o.paid_at, as_of - timedelta(minutes=5))
        o.status = om.PAID
        return o
    if o.paid_at > as_of:
        o.paid_at = None
        o.status = om.PENDING
        return o
    if target is None and rng.random() < 0.035:  # shopper cancels before shipping
        o.status = om.CANCELLED
        o.cancelled_at = o.paid_at + _hours(rng, 0.5, 20)
        if o.cancelled_at > as_of - timedelta(minutes=40):
            o.cancelled_at = as_of - timedelta(minutes=40)
        o.events.append(OrderEvent(kind="cancelled", actor=rng.choice(["shopper", "shopper", "agent"]),
                                   created_at=o.cancelled_at,
                                   detail={"reason": rng.choice(["Ordered by mistake", "Found it cheaper elsewhere",
                                                                 "Delivery takes too long", "Wrong size ordered"]),
                                           "via": rng.choice(["chat", "whatsapp", "email"])}))
        start = o.cancelled_at + timedelta(minutes=rng.randint(1, 20))
        age_c = (as_of - start).total_seconds() / 86400
        final = (rm.REFUND_INITIATED if age_c < 0.2 else rm.REFUND_PROCESSED if age_c < 3 else rm.REFUND_COMPLETED)
        if rng.random() < 0.07:
            final = rm.REFUND_FAILED
        tl = _refund_timeline(rng, start, final, as_of)
        tl = [t for t in tl if t[0] != rm.REFUND_PENDING] or tl  # no parcel to wait for
        b.refund(o, o.total, start, tl)
        return o

    origins = market.origins
    origin = rng.choices([x for x, _ in origins], weights=[w for _, w in origins])[0]
    duties = _needs_customs(origin, cc) and rng.random() < market.duties_chance
    duties_paid = not (duties and rng.random() < 0.08)
    exc_roll = rng.random()
    exception = "redeliver" if exc_roll < 0.04 else "return" if exc_roll < 0.055 else None
    if target == sm.DUTIES_DUE:
        origin, duties, duties_paid = "CN", True, True
    if target in (sm.EXPORT_CUSTOMS, sm.INTERNATIONAL_TRANSIT, sm.IMPORT_CUSTOMS) and not _needs_customs(origin, cc):
        origin = "CN" if cc != "CN" else "US"
    if target == sm.EXCEPTION:
        exception = "redeliver"
    if target == sm.RETURNED_TO_SENDER:
        exception, duties = "return", False
    if target in (sm.HANDED_TO_LAST_MILE,) and origin == cc:
        origin = "CN"
    if target is not None and target not in (sm.DUTIES_DUE, sm.RETURNED_TO_SENDER):
        duties = False
    if target not in (None, sm.EXCEPTION, sm.RETURNED_TO_SENDER, sm.DELIVERED):
        exception = None
    t0 = o.paid_at + _hours(rng, 6, 44)
    route = _build_route(rng, t0, origin, market, city, o.subtotal, duties=duties, duties_paid=duties_paid,
                         exception=exception)
    if target == om.PROCESSING:
        o.status = om.PROCESSING
        return o
    if target in _FORCED_SHIPMENT_TARGETS:
        idx = next(i for i, e in enumerate(route.events) if e.code == target)
        days = (as_of - route.events[idx].at).days  # floor: lands in (as_of - 1 day, as_of]
        if target == sm.DELIVERED:
            days -= rng.randint(0, 20)
        _shift(route, timedelta(days=days))
        route.events = route.events[:idx + 1]
        o.placed_at = route.events[0].at - (t0 - placed) - _hours(rng, 0, 2)
        o.paid_at = o.placed_at + timedelta(minutes=rng.randint(1, 15))
    else:
        route.events = [e for e in route.events if e.at <= as_of]
    if not route.events:
        o.status = om.PROCESSING if as_of - o.paid_at > timedelta(hours=3) else om.PAID
        return o
    b.shipment_for(o, route, rng, market)
    if route.events[-1].code == sm.DELIVERED:
        o.status = om.DELIVERED
        o.delivered_at = route.events[-1].at
    else:
        o.status = om.SHIPPED
    return o
