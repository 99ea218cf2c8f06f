"""Recognising order numbers, emails, phones and addresses in what shoppers type."""
from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr

import phonenumbers

ORDER_PREFIX = "CD-"
# "CD-104233", "cd104233", "cd 104233", "#104233", "order 104233", "104233"
# ASCII look-arounds instead of \b: in "订单104233到哪了" or "CD-104233の配送" the neighbours are word characters
# to Python, so \b would never match next to Chinese or Japanese text.
_ORDER_RE = re.compile(r"(?:(?<![A-Za-z0-9])cd[\s\-_#]*|#|(?<![A-Za-z0-9]))(1\d{5})(?![A-Za-z0-9])", re.IGNORECASE)
# Linear time on any input: a match may only start where a run of address characters starts (look-behind),
# and every repetition is bounded (RFC 5321 limits: 64-character local part, 253-character domain) — the
# unbounded form took seconds on 64 KB of letters.
_EMAIL_RE = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,63}")
_PHONE_RE = re.compile(r"(?:\+|00)?[\d][\d\s().\-/]{5,20}\d")


# Arabic-Indic (١٢٣), Persian (۱۲۳) and full-width (１２３) digits, as phones type them, read as ASCII digits.
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹０１２３４５６７８９", "0123456789" * 3)


def ascii_digits(text: str) -> str:
    return (text or "").translate(_DIGITS)


def extract_order_number(text: str) -> str | None:
    """The first thing that looks like one of our order numbers, normalised to CD-1xxxxx."""
    text = _EMAIL_RE.sub(" ", ascii_digits(text))
    for match in _ORDER_RE.finditer(text):
        return f"{ORDER_PREFIX}{match.group(1)}"
    return None


def normalize_email(value: str) -> str | None:
    _, addr = parseaddr((value or "").strip())
    addr = addr.strip().lower()
    return addr if _EMAIL_RE.fullmatch(addr) else None


def extract_email(text: str) -> str | None:
    match = _EMAIL_RE.search(text or "")
    return normalize_email(match.group(0)) if match else None


def normalize_phone(value: str, region: str | None = None) -> str | None:
    """E.164 form of a phone number, or None if it is not a valid number (region helps local formats)."""
    try:
        parsed = phonenumbers.parse((value or "").strip(), (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


MAX_PHONE_CANDIDATES = 20  # parsing a candidate is costly; a real answer has its phone among the first few


def extract_phone(text: str, region: str | None = None) -> str | None:
    text = _EMAIL_RE.sub(" ", text or "")
    for index, match in enumerate(_PHONE_RE.finditer(text)):
        if index >= MAX_PHONE_CANDIDATES:
            break
        candidate = match.group(0)
        if _ORDER_RE.fullmatch(candidate.strip()):
            continue
        phone = normalize_phone(candidate, region)
        if phone:
            return phone
    return None


# Postal code shapes per market: enough to catch typos, not a full address validator.
POSTAL_CODES = {
    "DE": r"\d{5}", "FR": r"\d{5}", "ES": r"\d{5}", "IT": r"\d{5}", "MX": r"\d{5}", "US": r"\d{5}(?:-\d{4})?",
    "NL": r"\d{4}\s?[A-Za-z]{2}", "GB": r"[A-Za-z]{1,2}\d[A-Za-z\d]?\s?\d[A-Za-z]{2}", "JP": r"\d{3}-?\d{4}",
    "BR": r"\d{5}-?\d{3}", "AU": r"\d{4}", "CN": r"\d{6}", "CA": r"[A-Za-z]\d[A-Za-z]\s?\d[A-Za-z]\d",
    "AT": r"\d{4}", "BE": r"\d{4}", "PT": r"\d{4}-\d{3}", "PL": r"\d{2}-\d{3}", "TR": r"\d{5}", "ID": r"\d{5}",
    "AE": r"", "SA": r"\d{5}",
}


# Markets whose addresses put a state/province code right before the postal code.
REGION_BEFORE_POSTAL = ("US", "CA", "AU")


@dataclass(frozen=True)
class Address:
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None
    region: str | None = None

    def one_line(self) -> str:
        parts = [self.line1, self.line2, f"{self.postal_code} {self.city}".strip(), self.region, self.country]
        return ", ".join(p for p in parts if p)


class AddressError(ValueError):
    """The text is not a usable address; `code` tells the shopper what is missing."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def parse_address(text: str, country: str) -> Address:
    """Parse 'street and number, postal code city' (comma or newline separated) for the given country.

    Raises AddressError('missing_street' | 'missing_postal_code' | 'invalid_postal_code' | 'missing_city').
    """
    country = country.upper()
    parts = [p.strip() for p in re.split(r"[,\n;]+", text or "") if p.strip()]
    if not parts or not re.search(r"[^\W\d_]", parts[0]):
        raise AddressError("missing_street")
    pattern = POSTAL_CODES.get(country, r"[A-Za-z\d\- ]{3,10}")
    if not pattern:  # countries without postal codes
        if len(parts) < 2:
            raise AddressError("missing_city")
        return Address(line1=parts[0], city=parts[-1], postal_code="", country=country)
    postal_re = re.compile(rf"(?<![\w-])({pattern})(?![\w-])")
    for index, part in enumerate(parts[1:], start=1):
        match = postal_re.search(part)
        if not match:
            continue
        city = (part[: match.start()] + part[match.end():]).strip(" ,")
        between = parts[1:index]
        region = None
        if country in REGION_BEFORE_POSTAL and city:  # "city, ST 12345" or "city ST 12345"
            if between and re.fullmatch(r"[A-Za-z]{2,3}", city):
                region, city = city.upper(), between.pop()
            elif state := re.fullmatch(r"(.+?)\s+([A-Z]{2,3})", city):
                region, city = state.group(2), state.group(1)
        if not city and index + 1 < len(parts):
            city = parts[index + 1]
        elif not city and between:  # "street, city, postcode" (UK style)
            city = between.pop()
        if not city or not re.search(r"[^\W\d_]", city):
            raise AddressError("missing_city")
        line2 = ", ".join(between) or None
        return Address(line1=parts[0], line2=line2, city=city, postal_code=match.group(1).upper(), country=country,
                       region=region)
    if any(re.search(r"\d{3,}", p) for p in parts[1:]):
        raise AddressError("invalid_postal_code")
    raise AddressError("missing_postal_code")
