"""Turns service results into the shopper's language: message catalogs plus Babel formatting.

Every string a shopper sees comes from crm/i18n/locales/<lang>.yml; dates, money and times are
formatted for the locale and time zone here, never in the services.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency
from jinja2 import Environment, StrictUndefined

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DEFAULT_LANGUAGE = "en"
_jinja = Environment(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=None)
def catalog(language: str) -> dict[str, Any]:
    path = LOCALES_DIR / f"{language}.yml"
    if not path.exists():
        path = LOCALES_DIR / f"{DEFAULT_LANGUAGE}.yml"
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def has_catalog(language: str) -> bool:
    return (LOCALES_DIR / f"{language}.yml").exists()


@lru_cache(maxsize=4096)
def _machine_translated(language: str, text: str) -> str:
    """An English catalog string in a language we have no catalog for, via offline machine translation.

    Placeholders ({{ order }}) are protected by the translator; if the pair is missing or the output
    lost a placeholder, the English string is used (the conversation is flagged, see crm.i18n.conversation_language).
    """
    try:
        from crm.i18n import translation

        result = translation.translate_template(text, DEFAULT_LANGUAGE, language)
    except Exception:  # translation is an optional layer: English is always a valid answer
        return text
    return result.text if result.ok else text


def _lookup(data: dict[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        node = node[part]
    return node


@lru_cache(maxsize=None)
def _babel_knows(language: str) -> bool:
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(language)
        return True
    except (UnknownLocaleError, ValueError, TypeError):
        return False


class Texts:
    """Catalog access for one language, falling back to English for a missing key."""

    def __init__(self, language: str | None):
        self.language = language or DEFAULT_LANGUAGE
        # Babel knows far more locales than we have catalogs; an unknown code formats as English.
        self.locale = self.language if _babel_knows(self.language) else DEFAULT_LANGUAGE

    def raw(self, key: str) -> Any:
        if self.language != DEFAULT_LANGUAGE and not has_catalog(self.language):
            english = _lookup(catalog(DEFAULT_LANGUAGE), key)
            if isinstance(english, list):
                return [_machine_translated(self.language, item) for item in english]
            return _machine_translated(self.language, english) if isinstance(english, str) else english
        try:
            return _lookup(catalog(self.language), key)
        except KeyError:
            return _lookup(catalog(DEFAULT_LANGUAGE), key)

    def __call__(self, key: str, **values: Any) -> str:
        return _jinja.from_string(self.raw(key)).render(**values)

    # --- locale formatting -------------------------------------------------------------------------
    def money(self, amount: Decimal, currency: str) -> str:
        return format_currency(amount, currency, locale=self.locale)

    def day(self, value: date) -> str:
        return format_date(value, format="long", locale=self.locale)

    def local_time(self, value: datetime, tz: str | None = None) -> str:
        zone = ZoneInfo(tz) if tz else value.tzinfo
        return format_datetime(value, format="medium", tzinfo=zone, locale=self.locale)


def refund_method(t: Texts, method: str) -> str:
    """A refund method's name; a method the catalog does not know yet reads as the original payment method."""
    try:
        return t(f"refund_methods.{method}")
    except KeyError:
        return t("refund_methods.original_payment")
