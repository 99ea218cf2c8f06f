"""The demo shop's markets: currency, tax, shipping, warehouses, carriers, cities (postal codes, phone areas,
time zones) and each market's return policy."""
from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

EU = ("DE", "FR", "ES", "IT", "NL", "SE")


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

LANGUAGE_FOR = {m.country: m.language for m in MARKETS.values()}
DEFAULT_TZ = {"DE": "Europe/Berlin", "FR": "Europe/Paris", "ES": "Europe/Madrid", "IT": "Europe/Rome",
              "NL": "Europe/Amsterdam", "GB": "Europe/London", "JP": "Asia/Tokyo"}


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
