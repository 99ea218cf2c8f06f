"""The conversation's language, decided once per inbound message inside the caller's unit of work.

Every channel feeds the same signals: the customer's profile, the WhatsApp sender's phone, the web
widget's locale and the browser's Accept-Language, an email's Content-Language. The decision itself is
crm.i18n.language.choose_language; this module reads the signals from the conversation and the
message, applies the decision and keeps the profile up to date, so the next conversation starts right.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy.orm import Session

from crm.conversations.models import Conversation
from crm.customers.models import Customer
from crm.i18n.language import (SUPPORTED, Priors, choose_language, explicit_request, foreign_language,
                               parse_accept_language)

log = logging.getLogger("crossdesk.language")

MACHINE = "machine"  # replies machine-translated from English
UNAVAILABLE = "unavailable"  # a language we cannot serve: English replies, flagged for agents


@dataclass(frozen=True)
class LanguageTurn:
    language: str  # the reply language
    switched: bool  # the conversation changed language on this message
    reason: str
    explicit: bool  # the shopper asked for the language ("auf Deutsch bitte")
    translation: str | None  # None (native), MACHINE or UNAVAILABLE
    newly_unavailable: bool  # first message in a language we cannot serve: apologise once
    foreign: str | None  # the unserved language seen, if any ("ko")


def shop_languages() -> tuple[str, ...]:
    """The languages the shop serves natively (CROSSDESK_LANGUAGES, default all twelve)."""
    configured = [code.strip() for code in os.environ.get("CROSSDESK_LANGUAGES", "").split(",") if code.strip()]
    chosen = tuple(code for code in configured if code in SUPPORTED)
    return chosen or SUPPORTED


def priors_for(session: Session, conv: Conversation, channel: str, sender_id: str, metadata: dict) -> Priors:
    metadata = metadata or {}
    profile = None
    if conv.customer_id is not None:
        customer = session.get(Customer, conv.customer_id)
        profile = customer.preferred_language if customer is not None else None

    def text(key: str) -> str | None:
        value = metadata.get(key)
        return value[:200] if isinstance(value, str) and value.strip() else None

    phone = sender_id if channel == "whatsapp" else text("phone")
    if phone and not phone.startswith("+"):
        phone = "+" + phone  # WhatsApp wa_id is E.164 without the plus
    return Priors(profile_language=profile, phone=phone, accept_language=text("accept_language"),
                  widget_locale=text("locale"), content_language=text("content_language"))


@dataclass(frozen=True)
class LanguageState:
    """What the decision needs from the database, read in the caller's transaction."""

    conversation_id: int
    customer_id: int | None
    current: str | None  # the decided language, None while undecided
    translation: str | None
    priors: Priors


@dataclass(frozen=True)
class LanguageDecision:
    language: str
    reason: str
    translation: str | None
    set_translation: bool
    undecided: bool
    turn: LanguageTurn


def read_state(session: Session, conv: Conversation, channel: str, sender_id: str, metadata: dict) -> LanguageState:
    return LanguageState(conv.id, conv.customer_id, conv.language if conv.language_reason is not None else None,
                         conv.translation, priors_for(session, conv, channel, sender_id, metadata))


def analyse(state: LanguageState, text: str, translatable: Iterable[str] = ()) -> LanguageDecision:
    """The decision itself: detection and rules, no database — run it outside any transaction."""
    served = shop_languages()
    translatable = tuple(code for code in translatable if code not in served)
    allowed = served + translatable
    current = state.current
    choice = choose_language(current, text, state.priors, allowed)
    foreign = None if choice.reason == "explicit_request" else foreign_language(text, allowed, translatable)
    language, reason = choice.language, choice.reason
    if foreign in translatable and foreign != language:
        language, reason = foreign, "detected_foreign"
    switched = current is not None and language != current
    if language in translatable:
        translation = MACHINE
    elif foreign is not None and foreign not in translatable:
        translation = UNAVAILABLE
    else:
        translation = None
    newly_unavailable = translation == UNAVAILABLE and state.translation != UNAVAILABLE
    if translation == UNAVAILABLE:
        log.warning("conversation %s writes %s, which we cannot serve: answering in %s, flagged for agents",
                    state.conversation_id, foreign, language)
    # A later message in a served language clears the flag; a no-signal message keeps it.
    set_translation = translation is not None or choice.reason not in ("no_signal", "short_message_kept")
    effective_translation = translation if set_translation else state.translation
    # A guess from priors or the default is not a decision: until a message with a language signal
    # arrives, the next message decides freely (a short "hola" after "CD-100001" must not be held to en).
    undecided = current is None and (reason in ("default", "no_signal", "error_fallback") or reason.startswith("prior:"))
    turn = LanguageTurn(language, switched, reason, reason == "explicit_request", effective_translation,
                        newly_unavailable, foreign)
    return LanguageDecision(language, reason, translation, set_translation, undecided, turn)


PROFILE_REASONS = ("explicit_request", "detected", "detected_short", "detected_foreign", "same_language")


def apply(session: Session, conv: Conversation, decision: LanguageDecision) -> LanguageTurn:
    """Record the decision on the conversation (and the customer's profile) in the caller's transaction."""
    if decision.set_translation:
        conv.translation = decision.translation
    conv.language, conv.language_reason = decision.language, (None if decision.undecided else decision.reason)
    if conv.customer_id is not None and decision.reason in PROFILE_REASONS:
        customer = session.get(Customer, conv.customer_id)
        if customer is not None and customer.preferred_language != decision.language:
            customer.preferred_language = decision.language
    return decision.turn


def decide(session: Session, conv: Conversation, text: str, channel: str, sender_id: str, metadata: dict,
           translatable: Iterable[str] = ()) -> LanguageTurn:
    """read_state → analyse → apply in one session (for callers without slow work to keep apart)."""
    return apply(session, conv, analyse(read_state(session, conv, channel, sender_id, metadata), text, translatable))


def only_a_language_request(text: str, allowed: Iterable[str] = SUPPORTED) -> bool:
    """"English please", "¿hablas español?": a request and nothing else for the bot to answer."""
    words = [w for w in (text or "").split() if any(ch.isalpha() for ch in w)]
    cjk = sum(1 for ch in text or "" if 0x3040 <= ord(ch) <= 0x9FFF)
    return explicit_request(text, allowed) is not None and len(words) + cjk // 2 <= 6


__all__ = ["LanguageTurn", "LanguageState", "LanguageDecision", "MACHINE", "MachineTranslation", "UNAVAILABLE", "analyse",
           "apply", "decide", "only_a_language_request", "parse_accept_language", "priors_for", "read_state",
           "shop_languages"]


class MachineTranslation:
    """What the inbound path needs from crm.i18n.translation: the extra languages it can serve (both directions
    through English are installed), and an English rendering of a shopper's message for the NLU."""

    def languages(self) -> tuple[str, ...]:
        try:
            from crm.i18n import translation

            pairs = translation.installed_pairs()
        except Exception:  # no translation layer at all: only the native languages
            return ()
        return tuple(sorted({src for src, tgt in pairs if tgt == "en" and ("en", src) in pairs} - set(SUPPORTED)))

    def to_english(self, text: str, language: str) -> str | None:
        from crm.i18n import translation

        result = translation.translate(text, language, "en")
        if not result.ok:
            log.warning("no English for a %s message (%s): the NLU gets the original", language, result.reason)
        return result.text if result.ok else None

    def warm(self) -> None:
        """Pay argostranslate's import (torch) at startup instead of in a shopper's first message."""
        if self.languages():
            from crm.i18n import translation

            translation.warm()
