"""A deterministic, realistic demo shop: customers, orders, parcels, returns and refunds.

Everything is generated relative to an ``anchor`` date (UTC) so the demo always looks live: the
newest events happen on the anchor day, parcels are "out for delivery today", returns windows are
open or just closed. The seeded clock is ``seed_clock(anchor)`` (anchor at 15:00 UTC): no row is
dated later than that, so pin ``CROSSDESK_NOW`` to it when you want the data to line up exactly.

Same anchor + same ``rng_seed`` -> byte-identical data (``random.Random`` only, no global random,
no uuid4, no wall clock). The showcase orders (``SHOWCASE_ORDERS``) are hand-made, always numbered
CD-100001..CD-100011 and generated from a fixed private seed, so the README and tests can name them.

Conventions used by the generated data:
* Catalogue prices are net; ``tax`` is VAT/GST/sales tax on (subtotal + shipping), so
  ``total == subtotal + shipping_cost + tax``, every amount quantized to the currency's minor unit
  (JPY: whole yen).
* Emails use the reserved example.com/.org/.net domains; US phones use the fictional 555-01XX
  block and Australian ones ACMA's fictional 0491 57x range. Other countries have no fictional
  mobile range that libphonenumber accepts, so those are random but valid mobile numbers.
* Tracking, label and duty-payment URLs point at example.com hosts.
"""
from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.customers.models import EMAIL, PHONE, Customer, CustomerIdentity
from crm.orders import models as om
from crm.orders.models import Order, OrderEvent, OrderLine
from crm.returns import models as rm
from crm.returns.models import Refund, RefundEvent, ReturnItem, ReturnPolicy, ReturnRequest
from crm.shipments import models as sm
from crm.shipments.models import Shipment, ShipmentEvent

UTC = timezone.utc
AS_OF_UTC = time(15, 0)  # the seeded "now" on the anchor day
EU = ("DE", "FR", "ES", "IT", "NL", "SE")
FIRST_BULK_NUMBER = 100012


class SeedError(RuntimeError):
    """The target database is not empty (or the arguments cannot produce a sensible shop)."""


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


def seed_clock(anchor: date) -> datetime:
    """The instant the seeded data treats as "now" (nothing is dated later)."""
    return datetime.combine(anchor, AS_OF_UTC, UTC)


def live_anchor(now: datetime) -> date:
    """The latest anchor whose seed clock is not in the future, so a live demo never shows future events."""
    anchor = now.astimezone(UTC).date()
    return anchor if seed_clock(anchor) <= now else anchor - timedelta(days=1)


# --------------------------------------------------------------------------------------------
# Money
# --------------------------------------------------------------------------------------------

MINOR_UNITS = {"EUR": 2, "GBP": 2, "USD": 2, "JPY": 0, "BRL": 2, "MXN": 2, "AUD": 2, "CAD": 2, "SEK": 2, "CNY": 2}
# Rough EUR -> currency rates used to localise catalogue prices (then rounded to "shop" prices).
EUR_RATES = {
    "EUR": Decimal("1"),
    "GBP": Decimal("0.86"),
    "USD": Decimal("1.09"),
    "JPY": Decimal("162"),
    "BRL": Decimal("5.9"),
    "MXN": Decimal("19.5"),
    "AUD": Decimal("1.65"),
    "CAD": Decimal("1.48"),
    "SEK": Decimal("11.2"),
}


def q(amount: Decimal, currency: str) -> Decimal:
    exp = Decimal(1).scaleb(-MINOR_UNITS[currency])
    return Decimal(amount).quantize(exp, rounding=ROUND_HALF_UP)


def shop_price(eur: Decimal, currency: str) -> Decimal:
    """Catalogue EUR price -> a price a shop would show in ``currency`` (x.99, x90 yen, ...)."""
    if currency == "EUR":
        return q(eur, currency)
    raw = eur * EUR_RATES[currency]
    if currency == "JPY":
        return q((raw / 10).to_integral_value(ROUND_HALF_UP) * 10, "JPY")  # whole yen, tens
    if currency in ("MXN", "SEK"):
        return q((raw / 10).to_integral_value(ROUND_HALF_UP) * 10 - 1, "MXN")  # 489.00
    if currency == "BRL":
        return q(raw.to_integral_value(ROUND_HALF_UP) - Decimal("0.10"), "BRL")  # 146.90
    return q(max(raw.to_integral_value(ROUND_HALF_UP), Decimal(1)) - Decimal("0.01"), currency)


# --------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Product:
    sku: str
    title: str
    eur: Decimal
    final_sale: bool = False
    weight: int = 10  # relative popularity


def _p(sku: str, title: str, eur: str, final_sale: bool = False, weight: int = 10) -> Product:
    return Product(sku, title, Decimal(eur), final_sale, weight)


CATALOGUE: tuple[Product, ...] = (
    _p("TEE-ORG-BLK", "Organic Cotton T-Shirt – Black", "24.90", weight=30),
    _p("TEE-ORG-WHT", "Organic Cotton T-Shirt – White", "24.90", weight=28),
    _p("HOOD-MER-GRY", "Merino Blend Hoodie – Heather Grey", "89.00", weight=14),
    _p("SWT-CRW-NVY", "Crewneck Sweatshirt – Navy", "59.00", weight=14),
    _p("JKT-RAIN-OLV", "Packable Rain Jacket – Olive", "119.00", weight=8),
    _p("PNT-CHN-SND", "Stretch Chinos – Sand", "69.00", weight=12),
    _p("JNS-SLM-IND", "Slim Selvedge Jeans – Indigo", "99.00", weight=10),
    _p("DRS-LIN-TER", "Linen Midi Dress – Terracotta", "79.00", weight=10),
    _p("SHR-OXF-BLU", "Oxford Shirt – Light Blue", "54.00", weight=12),
    _p("SCK-WOL-3PK", "Wool Hiking Socks (3-pack)", "19.90", weight=26),
    _p("SNK-CNV-WHT", "Canvas Sneakers – Off-White", "74.00", weight=12),
    _p("BAG-TOT-CNV", "Waxed Canvas Tote Bag", "45.00", weight=12),
    _p("BAG-BKP-20L", "Roll-Top Backpack 20 L", "129.00", weight=7),
    _p("WAL-LTH-BRN", "Slim Leather Wallet – Cognac", "39.00", weight=12),
    _p("BLT-LTH-BLK", "Leather Belt – Black", "35.00", weight=8),
    _p("CAP-BSB-NVY", "Cotton Baseball Cap – Navy", "24.00", weight=12),
    _p("BNE-MER-CHR", "Merino Beanie – Charcoal", "29.00", weight=10),
    _p("SCF-CSH-CML", "Cashmere Scarf – Camel", "79.00", weight=7),
    _p("SGL-POL-TRT", "Polarised Sunglasses – Tortoise", "89.00", weight=7),
    _p("WCH-MIN-SLV", "Minimalist Watch – Silver", "149.00", weight=5),
    _p("MUG-CER-SAG", "Stoneware Mug Set (2) – Sage", "32.00", weight=10),
    _p("BTL-STL-750", "Insulated Steel Bottle 750 ml", "29.90", weight=16),
    _p("CND-SOY-CED", "Soy Candle – Cedar & Amber", "22.00", weight=12),
    _p("THR-WOL-OAT", "Wool Throw Blanket – Oatmeal", "95.00", weight=5),
    _p("PLW-LIN-GRN", "Linen Cushion Cover – Forest", "27.00", weight=8),
    _p("TWL-TRK-SET", "Turkish Cotton Towel Set", "49.00", weight=7),
    _p("JRN-A5-DOT", "Dotted Notebook A5", "16.90", weight=14),
    _p("PEN-BRS-BLK", "Brass Ballpoint Pen", "34.00", weight=7),
    _p("CBL-USB-C2M", "Braided USB-C Cable 2 m", "14.90", weight=18),
    _p("CHG-GAN-65W", "65 W GaN Charger", "49.00", weight=10),
    _p("PBK-10K-WHT", "Power Bank 10,000 mAh", "39.00", weight=10),
    _p("EBD-ANC-BLK", "Wireless ANC Earbuds – Black", "129.00", weight=6),
    _p("CSE-PHN-CLR", "Clear Phone Case (MagSafe)", "24.90", weight=12),
    _p("STD-ALU-LPT", "Aluminium Laptop Stand", "59.00", weight=6),
    _p("YGA-MAT-CRK", "Cork Yoga Mat", "69.00", weight=6),
    _p("EAR-HOP-GLD", "Gold Hoop Earrings (final sale)", "39.00", True, weight=5),
    _p("UND-BRF-3PK", "Organic Briefs 3-pack (final sale)", "29.00", True, weight=5),
    _p("SWM-BKN-TEA", "Bikini Bottom – Teal (final sale)", "34.00", True, weight=4),
    _p("KEY-LTH-PRS", "Personalised Leather Keyring (final sale)", "24.00", True, weight=4),
    _p("OUT-LIN-SHR", "Sample Sale Linen Shirt (final sale)", "35.00", True, weight=4),
)
PRODUCTS = {p.sku: p for p in CATALOGUE}


# --------------------------------------------------------------------------------------------
# Markets, places, people
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class City:
    name: str
    region: str | None
    tz: str
    postal: Callable[[random.Random], str]
    area: tuple[str, ...] = ()  # phone area codes (US, BR, MX)
    tax: Decimal | None = None  # US combined sales-tax rate


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _rng_code(lo: int, hi: int, width: int, fmt: Callable[[str], str] = lambda s: s):
    return lambda rng: fmt(f"{rng.randint(lo, hi):0{width}d}")


def _nl_postal(lo: int, hi: int):
    letters = "ABCDEFGHJKLMNPRTVWXZ"

    def make(rng: random.Random) -> str:
        while True:
            pair = rng.choice(letters) + rng.choice(letters)
            if pair not in ("SA", "SD", "SS"):
                return f"{rng.randint(lo, hi)} {pair}"

    return make


def _gb_postal(*outward: str):
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    return lambda rng: f"{rng.choice(outward)} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"


def _jp(lo: int, hi: int):
    return lambda rng: f"{rng.randint(lo, hi):03d}-{rng.randint(1, 99):04d}"


def _br(lo: int, hi: int):
    return lambda rng: f"{rng.randint(lo, hi):05d}-{rng.randint(0, 999):03d}"


def _ca(*fsa: str):
    letters = "ABCEGHJKLMNPRSTVWXYZ"
    return lambda rng: f"{rng.choice(fsa)} {rng.randint(0, 9)}{rng.choice(letters)}{rng.randint(0, 9)}"


def _us(prefix: int, span: int = 99):
    return lambda rng: f"{prefix * 100 + rng.randint(1, span):05d}"


@dataclass(frozen=True)
class Market:
    country: str
    currency: str
    language: str
    tax: Decimal  # default VAT/GST (US: per city)
    shipping: Decimal
    free_over: Decimal
    origins: tuple[tuple[str, int], ...]  # warehouse country -> weight
    last_mile: tuple[str, ...]
    import_hub: tuple[str, str]  # (location, tz)
    duties_rate: Decimal  # duty/VAT share of goods value when held at customs
    duties_fee: Decimal  # carrier's clearance fee
    duties_chance: float
    cities: tuple[City, ...]
    weight: int


D = Decimal
MARKETS: dict[str, Market] = {
    "DE": Market("DE", "EUR", "de", D("0.19"), D("4.90"), D("60"), (("NL", 85), ("CN", 15)),
                 ("DHL Paket", "Hermes"), ("Leipzig/Halle Airport customs, DE", "Europe/Berlin"),
                 D("0.19"), D("6.00"), 0.04, (
        City("Berlin", None, "Europe/Berlin", _rng_code(10115, 14199, 5)),
        City("Hamburg", None, "Europe/Berlin", _rng_code(20095, 22769, 5)),
        City("München", None, "Europe/Berlin", _rng_code(80331, 81929, 5)),
        City("Köln", None, "Europe/Berlin", _rng_code(50667, 51149, 5)),
        City("Frankfurt am Main", None, "Europe/Berlin", _rng_code(60306, 60599, 5)),
        City("Stuttgart", None, "Europe/Berlin", _rng_code(70173, 70629, 5)),
        City("Leipzig", None, "Europe/Berlin", _rng_code(4103, 4357, 5)),
        City("Düsseldorf", None, "Europe/Berlin", _rng_code(40210, 40629, 5)),
    ), 18),
    "FR": Market("FR", "EUR", "fr", D("0.20"), D("4.90"), D("60"), (("NL", 85), ("CN", 15)),
                 ("Colissimo", "Chronopost"), ("Paris-Charles de Gaulle customs, FR", "Europe/Paris"),
                 D("0.20"), D("6.00"), 0.04, (
        City("Paris", None, "Europe/Paris", lambda r: f"750{r.randint(1, 20):02d}"),
        City("Lyon", None, "Europe/Paris", lambda r: f"6900{r.randint(1, 9)}"),
        City("Marseille", None, "Europe/Paris", lambda r: f"130{r.randint(1, 16):02d}"),
        City("Toulouse", None, "Europe/Paris", lambda r: f"31{r.choice(['000', '100', '200', '300', '400', '500'])}"),
        City("Bordeaux", None, "Europe/Paris", lambda r: f"33{r.choice(['000', '100', '200', '300', '800'])}"),
        City("Nantes", None, "Europe/Paris", lambda r: f"44{r.choice(['000', '100', '200', '300'])}"),
        City("Lille", None, "Europe/Paris", lambda r: f"59{r.choice(['000', '160', '260', '800'])}"),
    ), 10),
    "ES": Market("ES", "EUR", "es", D("0.21"), D("4.90"), D("60"), (("NL", 80), ("CN", 20)),
                 ("Correos", "SEUR"), ("Madrid-Barajas customs, ES", "Europe/Madrid"),
                 D("0.21"), D("6.00"), 0.04, (
        City("Madrid", "Madrid", "Europe/Madrid", lambda r: f"280{r.randint(1, 55):02d}"),
        City("Barcelona", "Barcelona", "Europe/Madrid", lambda r: f"080{r.randint(1, 42):02d}"),
        City("Valencia", "Valencia", "Europe/Madrid", lambda r: f"460{r.randint(1, 26):02d}"),
        City("Sevilla", "Sevilla", "Europe/Madrid", lambda r: f"410{r.randint(1, 20):02d}"),
        City("Bilbao", "Bizkaia", "Europe/Madrid", lambda r: f"480{r.randint(1, 15):02d}"),
        City("Zaragoza", "Zaragoza", "Europe/Madrid", lambda r: f"500{r.randint(1, 21):02d}"),
        City("Las Palmas de Gran Canaria", "Las Palmas", "Atlantic/Canary", lambda r: f"350{r.randint(1, 19):02d}"),
    ), 8),
    "IT": Market("IT", "EUR", "it", D("0.22"), D("4.90"), D("60"), (("NL", 80), ("CN", 20)),
                 ("Poste Italiane", "BRT"), ("Milano Malpensa customs, IT", "Europe/Rome"),
                 D("0.22"), D("6.00"), 0.04, (
        City("Roma", "RM", "Europe/Rome", lambda r: f"001{r.randint(18, 99):02d}"),
        City("Milano", "MI", "Europe/Rome", lambda r: f"201{r.randint(21, 62):02d}"),
        City("Napoli", "NA", "Europe/Rome", lambda r: f"801{r.randint(21, 47):02d}"),
        City("Torino", "TO", "Europe/Rome", lambda r: f"101{r.randint(21, 56):02d}"),
        City("Bologna", "BO", "Europe/Rome", lambda r: f"401{r.randint(21, 41):02d}"),
        City("Firenze", "FI", "Europe/Rome", lambda r: f"501{r.randint(21, 45):02d}"),
    ), 7),
    "NL": Market("NL", "EUR", "nl", D("0.21"), D("3.95"), D("50"), (("NL", 100),),
                 ("PostNL", "DHL eCommerce NL"), ("Amsterdam Schiphol customs, NL", "Europe/Amsterdam"),
                 D("0.21"), D("6.00"), 0.0, (
        City("Amsterdam", None, "Europe/Amsterdam", _nl_postal(1011, 1109)),
        City("Rotterdam", None, "Europe/Amsterdam", _nl_postal(3011, 3089)),
        City("Utrecht", None, "Europe/Amsterdam", _nl_postal(3511, 3585)),
        City("Den Haag", None, "Europe/Amsterdam", _nl_postal(2491, 2599)),
        City("Eindhoven", None, "Europe/Amsterdam", _nl_postal(5611, 5658)),
        City("Groningen", None, "Europe/Amsterdam", _nl_postal(9711, 9747)),
    ), 6),
    "GB": Market("GB", "GBP", "en", D("0.20"), D("3.99"), D("50"), (("NL", 60), ("CN", 40)),
                 ("Royal Mail", "Evri"), ("East Midlands Airport customs, GB", "Europe/London"),
                 D("0.20"), D("8.00"), 0.15, (
        City("London", None, "Europe/London", _gb_postal("E1", "N1", "SE1", "SW4", "W2", "NW3", "EC1V", "E8")),
        City("Manchester", None, "Europe/London", _gb_postal("M1", "M4", "M14", "M20")),
        City("Birmingham", None, "Europe/London", _gb_postal("B1", "B5", "B15", "B13")),
        City("Leeds", None, "Europe/London", _gb_postal("LS1", "LS6", "LS8")),
        City("Glasgow", None, "Europe/London", _gb_postal("G1", "G3", "G12")),
        City("Bristol", None, "Europe/London", _gb_postal("BS1", "BS6", "BS8")),
        City("Edinburgh", None, "Europe/London", _gb_postal("EH1", "EH3", "EH6")),
    ), 12),
    "US": Market("US", "USD", "en", D("0"), D("5.99"), D("75"), (("US", 80), ("CN", 20)),
                 ("USPS", "UPS"), ("Los Angeles (LAX) customs, US", "America/Los_Angeles"),
                 D("0.15"), D("5.00"), 0.10, (
        City("New York", "NY", "America/New_York", _us(100), ("212", "646", "917"), D("0.08875")),
        City("Brooklyn", "NY", "America/New_York", _us(112, 38), ("718", "347"), D("0.08875")),
        City("Los Angeles", "CA", "America/Los_Angeles", _us(900, 89), ("213", "310", "323"), D("0.095")),
        City("San Francisco", "CA", "America/Los_Angeles", _us(941, 34), ("415", "628"), D("0.08625")),
        City("Chicago", "IL", "America/Chicago", _us(606, 61), ("312", "773"), D("0.1025")),
        City("Austin", "TX", "America/Chicago", _us(787, 59), ("512", "737"), D("0.0825")),
        City("Seattle", "WA", "America/Los_Angeles", _us(981, 99), ("206",), D("0.1025")),
        City("Denver", "CO", "America/Denver", _us(802, 39), ("303", "720"), D("0.0881")),
        City("Boston", "MA", "America/New_York", _us(21, 37), ("617", "857"), D("0.0625")),
        City("Phoenix", "AZ", "America/Phoenix", _us(850, 86), ("602", "480"), D("0.086")),
        City("Portland", "OR", "America/Los_Angeles", _us(972, 39), ("503", "971"), D("0")),
    ), 18),
    "JP": Market("JP", "JPY", "ja", D("0.10"), D("800"), D("8000"), (("CN", 60), ("NL", 40)),
                 ("Japan Post", "Yamato Transport"), ("Narita International Airport customs, JP", "Asia/Tokyo"),
                 D("0.10"), D("200"), 0.06, (
        City("Tokyo", "Tokyo", "Asia/Tokyo", _jp(100, 208)),
        City("Osaka", "Osaka", "Asia/Tokyo", _jp(530, 559)),
        City("Yokohama", "Kanagawa", "Asia/Tokyo", _jp(220, 247)),
        City("Nagoya", "Aichi", "Asia/Tokyo", _jp(450, 468)),
        City("Sapporo", "Hokkaido", "Asia/Tokyo", _jp(60, 65)),
        City("Fukuoka", "Fukuoka", "Asia/Tokyo", _jp(810, 819)),
        City("Kyoto", "Kyoto", "Asia/Tokyo", _jp(600, 616)),
    ), 7),
    "BR": Market("BR", "BRL", "pt", D("0"), D("29.90"), D("299"), (("CN", 70), ("US", 30)),
                 ("Correios", "Jadlog"), ("Curitiba international mail centre, BR", "America/Sao_Paulo"),
                 D("0.37"), D("15.00"), 0.40, (
        City("São Paulo", "SP", "America/Sao_Paulo", _br(1000, 5999), ("11",)),
        City("Rio de Janeiro", "RJ", "America/Sao_Paulo", _br(20000, 23799), ("21",)),
        City("Belo Horizonte", "MG", "America/Sao_Paulo", _br(30000, 31999), ("31",)),
        City("Curitiba", "PR", "America/Sao_Paulo", _br(80000, 82999), ("41",)),
        City("Porto Alegre", "RS", "America/Sao_Paulo", _br(90000, 91999), ("51",)),
        City("Salvador", "BA", "America/Bahia", _br(40000, 42499), ("71",)),
        City("Manaus", "AM", "America/Manaus", _br(69000, 69099), ("92",)),
    ), 5),
    "MX": Market("MX", "MXN", "es", D("0.16"), D("99"), D("1200"), (("US", 65), ("CN", 35)),
                 ("Estafeta", "DHL Express MX"), ("Mexico City (MEX) customs, MX", "America/Mexico_City"),
                 D("0.19"), D("0"), 0.30, (
        City("Ciudad de México", "CDMX", "America/Mexico_City", _rng_code(1000, 16999, 5), ("55",)),
        City("Guadalajara", "Jal.", "America/Mexico_City", _rng_code(44100, 44990, 5), ("33",)),
        City("Monterrey", "N.L.", "America/Monterrey", _rng_code(64000, 64999, 5), ("81",)),
        City("Puebla", "Pue.", "America/Mexico_City", _rng_code(72000, 72599, 5), ("222",)),
        City("Querétaro", "Qro.", "America/Mexico_City", _rng_code(76000, 76249, 5), ("442",)),
        City("Mérida", "Yuc.", "America/Merida", _rng_code(97000, 97399, 5), ("999",)),
        City("Tijuana", "B.C.", "America/Tijuana", _rng_code(22000, 22709, 5), ("664",)),
    ), 5),
    "AU": Market("AU", "AUD", "en", D("0.10"), D("9.95"), D("100"), (("CN", 100),),
                 ("Australia Post", "Sendle"), ("Sydney Gateway customs, AU", "Australia/Sydney"),
                 D("0.05"), D("10.00"), 0.05, (
        City("Sydney", "NSW", "Australia/Sydney", _rng_code(2000, 2234, 4)),
        City("Melbourne", "VIC", "Australia/Melbourne", _rng_code(3000, 3207, 4)),
        City("Brisbane", "QLD", "Australia/Brisbane", _rng_code(4000, 4179, 4)),
        City("Perth", "WA", "Australia/Perth", _rng_code(6000, 6199, 4)),
        City("Adelaide", "SA", "Australia/Adelaide", _rng_code(5000, 5199, 4)),
        City("Hobart", "TAS", "Australia/Hobart", _rng_code(7000, 7019, 4)),
    ), 6),
    "CA": Market("CA", "CAD", "en", D("0.13"), D("7.99"), D("100"), (("US", 80), ("CN", 20)),
                 ("Canada Post", "Purolator"), ("Toronto Pearson (YYZ) customs, CA", "America/Toronto"),
                 D("0.13"), D("9.95"), 0.20, (
        City("Toronto", "ON", "America/Toronto", _ca("M5V", "M4Y", "M6J", "M5A", "M4M"), ("416", "647"), D("0.13")),
        City("Ottawa", "ON", "America/Toronto", _ca("K1P", "K1R", "K2P"), ("613", "343"), D("0.13")),
        City("Montréal", "QC", "America/Toronto", _ca("H2X", "H2T", "H3B", "H2J"), ("514", "438"), D("0.14975")),
        City("Vancouver", "BC", "America/Vancouver", _ca("V6B", "V5K", "V6K", "V5T"), ("604", "778"), D("0.12")),
        City("Calgary", "AB", "America/Edmonton", _ca("T2P", "T2R", "T3A"), ("403", "587"), D("0.05")),
    ), 5),
    "SE": Market("SE", "SEK", "sv", D("0.25"), D("49"), D("600"), (("NL", 85), ("CN", 15)),
                 ("PostNord", "Budbee"), ("Stockholm Arlanda customs, SE", "Europe/Stockholm"),
                 D("0.25"), D("75"), 0.04, (
        City("Stockholm", None, "Europe/Stockholm", lambda r: f"1{r.randint(11, 77)} {r.randint(10, 69)}"),
        City("Göteborg", None, "Europe/Stockholm", lambda r: f"4{r.randint(11, 18)} {r.randint(10, 79)}"),
        City("Malmö", None, "Europe/Stockholm", lambda r: f"2{r.randint(11, 17)} {r.randint(10, 59)}"),
        City("Uppsala", None, "Europe/Stockholm", lambda r: f"75{r.randint(1, 8)} {r.randint(10, 59)}"),
    ), 4),
}

FIRST_NAMES = {
    "DE": "Lukas Leon Finn Paul Jonas Felix Maximilian Elias Ben Noah Anna Marie Sophie Emma Mia Hannah Lena Laura Julia Katharina Sabine Thomas Stefan Andreas",
    "FR": "Camille Léa Manon Chloé Inès Louise Julie Claire Lucas Hugo Louis Gabriel Arthur Jules Thomas Nicolas Antoine Mathilde Élodie Théo",
    "ES": "Lucía María Paula Sofía Carmen Laura Marta Elena Alejandro Pablo Daniel Javier Sergio Carlos Hugo Álvaro Diego Irene Raquel Adrián",
    "IT": "Giulia Francesca Chiara Sara Martina Alessia Elena Valentina Marco Luca Alessandro Matteo Lorenzo Andrea Davide Francesco Giovanni Federica Simone Paolo",
    "NL": "Daan Sem Lucas Levi Finn Milan Jesse Bram Emma Julia Tess Sophie Anna Sanne Lotte Fleur Eva Noor Ruben Thijs",
    "GB": "Oliver George Harry Jack Charlie Thomas James William Olivia Amelia Isla Ava Emily Sophie Grace Chloe Charlotte Hannah Daniel Priya",
    "US": "James Michael Robert David John Christopher Daniel Matthew Emily Jessica Ashley Sarah Jennifer Madison Olivia Emma Ethan Tyler Mia Chloe Carlos Jasmine",
    "JP": "Yuki Haruto Sota Yuto Ren Takumi Kenji Hiroshi Daiki Sakura Yui Hina Aoi Mei Misaki Haruka Ayaka Nanami Riko Kaito",
    "BR": "Ana Maria Juliana Mariana Beatriz Larissa Camila Fernanda Gabriela Lucas Pedro Gabriel Rafael Matheus Gustavo Felipe João Bruno Thiago Letícia",
    "MX": "Sofía Valentina Regina Camila Ximena Fernanda Daniela Mariana Santiago Mateo Diego Emiliano Leonardo José Luis Miguel Alejandro Andrea Guadalupe Jorge",
    "AU": "Jack Oliver William Noah Thomas Lachlan Liam Cooper Charlotte Olivia Ava Mia Chloe Isla Zoe Ruby Matilda Harper Ethan Sienna",
    "CA": "Liam Noah Benjamin Lucas Jacob Nathan Samuel Olivia Emma Charlotte Chloé Amelia Léa Sophia Maya Gabriel Félix Avery",
    "SE": "Erik Lars Karl Anders Johan Oscar William Hugo Elsa Alice Maja Astrid Ebba Wilma Saga Linnea Anna Ingrid",
}
LAST_NAMES = {
    "DE": "Müller|Schmidt|Schneider|Fischer|Weber|Meyer|Wagner|Becker|Schulz|Hoffmann|Koch|Richter|Klein|Wolf|Schröder|Neumann|Zimmermann|Krüger|Hartmann|Lange",
    "FR": "Martin|Bernard|Dubois|Thomas|Robert|Richard|Petit|Durand|Leroy|Moreau|Simon|Laurent|Lefèvre|Michel|Garcia|David|Bertrand|Roux|Fournier|Girard",
    "ES": "García|Fernández|González|Rodríguez|López|Martínez|Sánchez|Pérez|Gómez|Martín|Jiménez|Ruiz|Hernández|Díaz|Moreno|Álvarez|Romero|Navarro|Torres|Domínguez",
    "IT": "Rossi|Russo|Ferrari|Esposito|Bianchi|Romano|Colombo|Ricci|Marino|Greco|Bruno|Gallo|Conti|De Luca|Mancini|Costa|Giordano|Rizzo|Lombardi|Moretti",
    "NL": "de Jong|Jansen|de Vries|van den Berg|van Dijk|Bakker|Janssen|Visser|Smit|Meijer|de Boer|Mulder|de Groot|Bos|Vos|Peters|Hendriks|van Leeuwen|Dekker|Brouwer",
    "GB": "Smith|Jones|Taylor|Brown|Williams|Wilson|Johnson|Davies|Robinson|Wright|Thompson|Evans|Walker|White|Roberts|Green|Hall|Wood|Patel|Khan",
    "US": "Smith|Johnson|Williams|Brown|Jones|Miller|Davis|Garcia|Rodriguez|Wilson|Martinez|Anderson|Taylor|Thomas|Moore|Jackson|Lee|Nguyen|Kim|Carter",
    "JP": "Sato|Suzuki|Takahashi|Tanaka|Watanabe|Ito|Yamamoto|Nakamura|Kobayashi|Kato|Yoshida|Yamada|Sasaki|Yamaguchi|Matsumoto|Inoue|Kimura|Hayashi|Shimizu|Mori",
    "BR": "Silva|Santos|Oliveira|Souza|Rodrigues|Ferreira|Alves|Pereira|Lima|Gomes|Costa|Ribeiro|Martins|Carvalho|Almeida|Lopes|Araújo|Barbosa|Rocha|Cardoso",
    "MX": "Hernández|García|Martínez|López|González|Pérez|Rodríguez|Sánchez|Ramírez|Cruz|Flores|Gómez|Morales|Vázquez|Jiménez|Reyes|Díaz|Torres|Gutiérrez|Ruiz",
    "AU": "Smith|Jones|Williams|Brown|Wilson|Taylor|Johnson|White|Martin|Anderson|Thompson|Nguyen|Thomas|Walker|Harris|Lee|Ryan|Robinson|Kelly|King",
    "CA": "Smith|Tremblay|Martin|Roy|Wilson|MacDonald|Gagnon|Taylor|Campbell|Anderson|Leblanc|Lee|Wong|Singh|Côté|Bouchard|Morrison|Fraser",
    "SE": "Andersson|Johansson|Karlsson|Nilsson|Eriksson|Larsson|Olsson|Persson|Svensson|Gustafsson|Pettersson|Lindberg|Lindqvist|Berg|Holm|Sandberg",
}
STREETS = {
    "DE": "Hauptstraße|Bahnhofstraße|Gartenstraße|Schulstraße|Lindenstraße|Kastanienallee|Goethestraße|Schillerstraße|Bergstraße|Friedrichstraße|Mozartstraße|Am Markt",
    "FR": "rue de la République|avenue Jean Jaurès|rue Victor Hugo|boulevard Voltaire|rue du Faubourg Saint-Antoine|rue des Lilas|avenue de la Gare|rue Pasteur|rue Nationale|place de la Liberté",
    "ES": "Calle Mayor|Calle de Alcalá|Avenida de la Constitución|Calle Real|Paseo de Gracia|Calle San Vicente|Gran Vía|Calle del Sol|Avenida de América|Calle Nueva",
    "IT": "Via Roma|Via Garibaldi|Corso Vittorio Emanuele II|Via Mazzini|Via Dante Alighieri|Via Cavour|Viale della Repubblica|Via Verdi|Via Manzoni|Via XX Settembre",
    "NL": "Kerkstraat|Dorpsstraat|Prinsengracht|Stationsweg|Molenstraat|Julianalaan|Schoolstraat|Nieuwstraat|Beatrixlaan|Oranjestraat",
    "GB": "High Street|Station Road|Church Lane|Victoria Road|Park Avenue|Mill Lane|King Street|Queens Road|Albert Road|The Crescent",
    "US": "Maple Avenue|Oak Street|Main Street|Pine Street|Cedar Lane|Elm Street|Washington Avenue|Lake Drive|Park Place|Highland Avenue",
    "JP": "Jingumae|Ebisu|Sangenjaya|Azabu-Juban|Nishi-Shinjuku|Nakameguro|Umeda|Minatomirai|Sakae|Tenjin|Kawaramachi|Odori-Nishi",
    "BR": "Rua Augusta|Avenida Paulista|Rua das Flores|Rua XV de Novembro|Avenida Brasil|Rua Sete de Setembro|Rua da Consolação|Avenida Atlântica|Rua Bahia|Rua Padre Anchieta",
    "MX": "Av. Insurgentes Sur|Calle Francisco I. Madero|Paseo de la Reforma|Calle Hidalgo|Av. Juárez|Calle Morelos|Av. Vallarta|Calle 5 de Mayo|Av. Revolución|Calle Allende",
    "AU": "George Street|Collins Street|Queen Street|Hay Street|King William Street|Elizabeth Street|Smith Street|Church Street|Beach Road|Park Road",
    "CA": "Queen Street West|King Street East|Yonge Street|Main Street|Maple Avenue|Rue Saint-Denis|Boulevard Saint-Laurent|Granville Street|Bank Street|Elgin Street",
    "SE": "Storgatan|Drottninggatan|Kungsgatan|Vasagatan|Skolgatan|Järnvägsgatan|Linnégatan|Götgatan|Sveavägen|Östra Hamngatan",
}
COLONIAS = ("Centro", "Del Valle", "Roma Norte", "Condesa", "Narvarte", "Americana", "Obispado", "Jardines del Bosque")
BAIRROS = ("Centro", "Jardim Paulista", "Copacabana", "Savassi", "Batel", "Moinhos de Vento", "Barra", "Adrianópolis")

LANGUAGE_FOR = {m.country: m.language for m in MARKETS.values()}
DEFAULT_TZ = {"DE": "Europe/Berlin", "FR": "Europe/Paris", "ES": "Europe/Madrid", "IT": "Europe/Rome",
              "NL": "Europe/Amsterdam", "GB": "Europe/London", "JP": "Asia/Tokyo"}


def _address(rng: random.Random, cc: str, city: City) -> dict:
    street = rng.choice(STREETS[cc].split("|"))
    n = rng.randint(1, 120)
    line2 = None
    if cc == "DE":
        line1 = f"{street} {n}"
        line2 = rng.choice([None, None, None, "Hinterhaus", f"{rng.randint(1, 5)}. OG"])
    elif cc == "FR":
        line1 = f"{n} {street}"
        line2 = rng.choice([None, None, f"Appartement {rng.randint(1, 40)}", f"Bâtiment {rng.choice('ABC')}"])
    elif cc == "ES":
        line1 = f"{street}, {n}"
        line2 = f"{rng.randint(1, 8)}º {rng.choice('ABCD')}" if rng.random() < 0.7 else None
    elif cc == "IT":
        line1 = f"{street} {n}"
        line2 = rng.choice([None, None, f"Scala {rng.choice('AB')}, int. {rng.randint(1, 20)}"])
    elif cc == "NL":
        line1 = f"{street} {n}{rng.choice(['', '', '', 'A', '-2', ' bis'])}"
    elif cc == "GB":
        line1 = f"{n} {street}"
        line2 = f"Flat {rng.randint(1, 12)}" if rng.random() < 0.3 else None
    elif cc == "US":
        line1 = f"{rng.randint(100, 9899)} {street}"
        line2 = f"Apt {rng.randint(1, 25)}{rng.choice('ABCD')}" if rng.random() < 0.35 else None
    elif cc == "JP":
        line1 = f"{rng.randint(1, 5)}-{rng.randint(1, 30)}-{rng.randint(1, 20)} {street}"
        line2 = f"Room {rng.randint(1, 12)}0{rng.randint(1, 9)}" if rng.random() < 0.5 else None
    elif cc == "BR":
        line1 = f"{street}, {rng.randint(10, 2500)}"
        line2 = (f"Apto {rng.randint(11, 184)} – " if rng.random() < 0.6 else "") + rng.choice(BAIRROS)
    elif cc == "MX":
        line1 = f"{street} {rng.randint(10, 1999)}"
        line2 = ("Int. " + str(rng.randint(1, 30)) + ", " if rng.random() < 0.4 else "") + "Col. " + rng.choice(COLONIAS)
    elif cc == "CA":
        line1 = f"{rng.randint(10, 2999)} {street}"
        line2 = f"Unit {rng.randint(101, 2405)}" if rng.random() < 0.4 else None
    elif cc == "SE":
        line1 = f"{street} {n}"
        line2 = f"lgh {rng.randint(10, 16)}{rng.randint(1, 4):02d}" if rng.random() < 0.5 else None
    else:  # AU
        line1 = f"{n} {street}"
        line2 = f"Unit {rng.randint(1, 40)}" if rng.random() < 0.3 else None
    return {"line1": line1, "line2": line2, "city": city.name, "postal_code": city.postal(rng),
            "region": city.region, "country": cc}


def _phone_candidate(rng: random.Random, cc: str, city: City) -> str:
    if cc == "DE":
        return "+49" + rng.choice(["151", "152", "157", "160", "170", "171", "172", "175", "176", "177", "178", "179"]) + _digits(rng, rng.choice([7, 8]))
    if cc == "FR":
        return "+33" + rng.choice("67") + _digits(rng, 8)
    if cc == "ES":
        return "+346" + _digits(rng, 8)
    if cc == "IT":
        return "+39" + rng.choice(["320", "328", "333", "338", "340", "347", "348", "349", "366", "380", "392"]) + _digits(rng, 7)
    if cc == "NL":
        return "+316" + _digits(rng, 8)
    if cc == "GB":
        return "+447" + rng.choice("45789") + _digits(rng, 8)
    if cc == "SE":
        return "+467" + rng.choice("0236") + _digits(rng, 7)
    if cc in ("US", "CA"):  # NANP fictional block 555-0100..0199
        return "+1" + rng.choice(city.area) + "55501" + _digits(rng, 2)
    if cc == "JP":
        return "+81" + rng.choice(["70", "80", "90"]) + _digits(rng, 8)
    if cc == "BR":
        return "+55" + city.area[0] + "9" + rng.choice("6789") + _digits(rng, 7)
    if cc == "MX":
        area = city.area[0]
        return "+52" + area + _digits(rng, 10 - len(area))
    if cc == "AU":  # ACMA fictional mobile ranges
        block, lo, hi = rng.choice([("570", 6, 159), ("571", 266, 491), ("572", 549, 665)])
        return f"+61491{block}{rng.randint(lo, hi):03d}"
    raise ValueError(cc)


def is_valid_e164(number: str, country: str | None = None) -> bool:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    if not phonenumbers.is_valid_number(parsed):
        return False
    if phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) != number:
        return False
    return country is None or phonenumbers.region_code_for_number(parsed) == country


def _make_phone(rng: random.Random, cc: str, city: City, used: set[str]) -> str:
    for _ in range(500):
        number = _phone_candidate(rng, cc, city)
        if number not in used and is_valid_e164(number, cc):
            used.add(number)
            return number
    raise SeedError(f"could not generate a valid unused phone number for {cc}")


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in text.lower() if ch.isalnum() or ch in ".-")


# --------------------------------------------------------------------------------------------
# Time helpers
# --------------------------------------------------------------------------------------------

_TZ: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    if name not in _TZ:
        _TZ[name] = ZoneInfo(name)
    return _TZ[name]


def _local_window(t: datetime, tz: str, start_h: int, end_h: int, rng: random.Random,
                  no_sunday: bool = False) -> datetime:
    """Move ``t`` forward into [start_h, end_h) local time of ``tz`` (optionally never on Sunday)."""
    loc = t.astimezone(_zone(tz))
    day = loc.date()
    if loc.hour >= end_h:
        day += timedelta(days=1)
        loc = None
    elif loc.hour < start_h:
        loc = None
    while no_sunday and day.weekday() == 6:
        day += timedelta(days=1)
        loc = None
    if loc is None:
        minutes = rng.randint(0, max(1, (end_h - start_h) * 60 // 3))
        loc = datetime.combine(day, time(start_h), _zone(tz)) + timedelta(minutes=minutes)
    return loc.astimezone(UTC)


def _hours(rng: random.Random, lo: float, hi: float) -> timedelta:
    return timedelta(minutes=rng.randint(int(lo * 60), int(hi * 60)))


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


# --------------------------------------------------------------------------------------------
# Return policies
# --------------------------------------------------------------------------------------------

_EU_RETURNS = "crossdesk Returns, Venrayseweg 120, 5928 RH Venlo, Netherlands"
POLICIES = {
    # market: (window_days, paid_by, fee, refund_methods, return_address)
    "DE": (30, "shop", "0", ["original_payment", "store_credit"], _EU_RETURNS),
    "FR": (14, "customer", "5.90", ["original_payment", "store_credit"], _EU_RETURNS),
    "ES": (14, "customer", "4.95", ["original_payment", "store_credit"], _EU_RETURNS),
    "IT": (14, "customer", "5.90", ["original_payment", "store_credit"], _EU_RETURNS),
    "NL": (14, "shop", "0", ["original_payment", "store_credit"], _EU_RETURNS),
    "GB": (28, "customer", "3.99", ["original_payment", "store_credit"],
           "crossdesk UK Returns, Unit 7 Midpoint Park, Sutton Coldfield, B76 1AB, United Kingdom"),
    "US": (30, "shop", "0", ["original_payment", "store_credit", "exchange"],
           "crossdesk Returns, 1200 Commerce Way, Reno, NV 89502, United States"),
    "JP": (14, "customer", "1200", ["original_payment", "store_credit"],
           "crossdesk Japan Returns, 2-8-1 Heiwajima, Ota-ku, Tokyo 143-0006, Japan"),
    "BR": (7, "shop", "0", ["original_payment", "pix", "store_credit"],
           "crossdesk Devoluções, Rua Vergueiro 1000, São Paulo - SP, 01504-000, Brasil"),
    "MX": (30, "customer", "149", ["original_payment", "store_credit"],
           "crossdesk Devoluciones, Av. Ejército Nacional 500, Col. Granada, 11520 Ciudad de México, México"),
    "AU": (30, "customer", "9.95", ["original_payment", "store_credit"],
           "crossdesk AU Returns, 15 Mercantile Road, Botany NSW 2019, Australia"),
    "CA": (30, "customer", "7.99", ["original_payment", "store_credit"],
           "crossdesk Returns c/o ReturnHub, 220 Export Boulevard, Mississauga, ON L5S 1Y9, Canada"),
    "SE": (14, "customer", "59", ["original_payment", "store_credit"], _EU_RETURNS),
}

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
