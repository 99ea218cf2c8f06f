"""The demo shop's catalogue and money: net EUR prices, localised to "shop" prices in each currency."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

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
