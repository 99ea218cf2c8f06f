"""Which language to answer a shopper in: detection of single messages plus per-conversation memory."""
from crm.language.service import (
    DEFAULT_LANGUAGE,
    SUPPORTED,
    Choice,
    Detection,
    LanguageMemory,
    Priors,
    choose_language,
    detect_language,
    explicit_request,
    language_for_phone,
    parse_accept_language,
)

__all__ = [
    "DEFAULT_LANGUAGE", "SUPPORTED", "Choice", "Detection", "LanguageMemory", "Priors", "choose_language",
    "detect_language", "explicit_request", "language_for_phone", "parse_accept_language",
]
