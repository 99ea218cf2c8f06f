"""Span protection: what machine translation must never touch.

Order numbers, tracking numbers, SKUs, emails, URLs, phone numbers, amounts, Jinja placeholders, other
numbers and glossary terms (brands, carriers) are swapped for atomic tokens ``<ph0>``, ``<ph1>`` … before
translation and restored afterwards, so a wrong digit or a "translated" brand can never reach a shopper.
The shipped models have these tokens as SentencePiece user-defined symbols and learned to copy them.

Pure standard library on purpose: tools/argos/build_model.py uses the very same function to build the
training pairs, so the model sees exactly what the runtime sends it.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAX_PLACEHOLDERS = 20  # the shipped vocabularies have <ph0> … <ph19>
PLACEHOLDER = re.compile(r"<ph(\d+)>")
DEFAULT_GLOSSARY_FILE = Path(__file__).resolve().parents[2] / "data" / "translation" / "glossary.txt"

_CUR_WORD = r"(?:EUR|USD|GBP|SEK|NOK|DKK|CHF|PLN|CZK|HUF|kr|SFr)"
_CUR_SYM = r"(?:US\$|C\$|A\$|[€$£¥])"
# Bounded and starting only at a run of digits: linear on a megabyte of digits (see _PATTERNS).
_NUM = r"(?<!\d)(?:\d{1,3}(?:[.,\u00a0\u202f' ]\d{3}){0,6}(?:[.,]\d{1,2})?(?!\d)|\d{1,24}(?:[.,]\d{1,2})?(?!\d))"

# (name, regex) in priority order: on overlap the earlier-starting, then longer, then earlier-listed wins.
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("placeholder", PLACEHOLDER),  # a literal "<ph3>" typed by someone must survive too
    # Every repetition that could scan to the end of the text from many starting points is bounded (or may
    # only start where a run starts): shopper text can be a megabyte, and each pattern must stay linear.
    ("jinja", re.compile(r"\{\{[^{}]{0,200}\}\}|\{%[^%]{0,200}%\}")),
    ("url", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']{0,2047}[^\s<>\"'.,;:!?)\]}]")),
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")),
    ("amount", re.compile(rf"{_CUR_SYM}\s?(?:{_NUM})(?:\s?{_CUR_WORD}\b)?|(?:{_NUM})\s?(?:{_CUR_SYM}|{_CUR_WORD}\b)"
                          rf"|\b{_CUR_WORD}\s?(?:{_NUM})")),
    ("order", re.compile(r"\bCD-\d{4,}\b|#\d{4,}\b|(?<![\w.,])\d{6}(?![\w]|[.,]\d)")),
    ("phone", re.compile(r"(?<![\w+])(?:\+|00)\d{1,3}[\s\-/.]?(?:\(\d{1,4}\)[\s\-/.]?)?\d{1,5}(?:[\s\-/.]?\d{2,5}){1,4}\b"
                         r"|(?<![\w+])0\d{1,4}[\-/ ]\d{2,4}(?:[\s\-]\d{2,4}){0,3}\b")),
    ("tracking", re.compile(r"\b1Z[0-9A-Z]{16}\b|\b[A-Z]{2}\d{9}[A-Z]{2}\b"
                            r"|\b(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{10,34}\b|\b\d{10,22}\b")),
    ("sku", re.compile(r"\b[A-Z][A-Z0-9]{1,7}(?:-[A-Z0-9]{1,8})*-\d[A-Z0-9]*(?:-[A-Z0-9]{1,8})*\b")),
    ("number", re.compile(r"(?<!\w)\d[\d.,:/\-]*\d(?!\w)|(?<!\w)\d(?!\w)|\b\w*\d\w*\b")),
]


@dataclass(frozen=True)
class Protected:
    """Text with spans swapped for ``<phN>`` tokens; ``spans[N]`` is the original of ``<phN>``."""

    text: str
    spans: tuple[str, ...]


def load_glossary(path: Path = DEFAULT_GLOSSARY_FILE) -> tuple[str, ...]:
    """Terms from a glossary file: one per line, ``#`` comments and blank lines ignored."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return ()
    return tuple(t for t in (line.split("#", 1)[0].strip() for line in lines) if t)


def _glossary_pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    terms = sorted({t for t in terms if t.strip()}, key=len, reverse=True)  # longest first: "DHL Express"
    if not terms:
        return None
    # Case-sensitive on purpose: "UPS" is a carrier, German "ups" is not.
    return re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(t) for t in terms) + r")(?![\w-])")


def protect(text: str, glossary: Iterable[str] = ()) -> Protected:
    """Replace every protected span with ``<phN>``, numbered by position in the text."""
    candidates: list[tuple[int, int, int]] = []  # (start, -end, priority)
    patterns = list(_PATTERNS)
    gloss = _glossary_pattern(glossary)
    if gloss is not None:
        patterns.insert(2, ("glossary", gloss))
    for priority, (_, pattern) in enumerate(patterns):
        candidates += [(m.start(), -m.end(), priority) for m in pattern.finditer(text) if m.end() > m.start()]
    candidates.sort()
    chosen: list[tuple[int, int]] = []
    taken_until = 0
    for start, neg_end, _ in candidates:
        if start >= taken_until:
            chosen.append((start, -neg_end))
            taken_until = -neg_end
    out, spans, pos = [], [], 0
    for start, end in chosen:
        out.append(text[pos:start])
        out.append(f"<ph{len(spans)}>")
        spans.append(text[start:end])
        pos = end
    out.append(text[pos:])
    return Protected("".join(out), tuple(spans))


def check_placeholders(translated: str, count: int) -> str | None:
    """None if ``<ph0>`` … ``<ph{count-1}>`` each occur exactly once and nothing else does; else why not."""
    found = Counter(int(n) for n in PLACEHOLDER.findall(translated))
    expected = Counter(range(count))
    if found == expected:
        return None
    lost = sorted(set(expected) - set(found))
    extra = sorted(n for n, c in found.items() if n not in expected or c > 1)
    return f"protected span lost {lost} / duplicated or invented {extra}"


def restore(translated: str, spans: tuple[str, ...]) -> str:
    """Put the original spans back (call after :func:`check_placeholders` passed)."""
    return PLACEHOLDER.sub(lambda m: spans[int(m.group(1))], translated)


def has_words(protected_text: str) -> bool:
    """False if nothing but placeholders, digits and punctuation is left: nothing to translate."""
    return bool(re.search(r"[^\W\d_]", PLACEHOLDER.sub("", protected_text)))
