"""Shopper text can be a megabyte (an email body, a pasted log): every function that reads it before the
length limit applies must take well under a second on 1 MB, whatever the text — no regex or parser that
backtracks from every position (a quadratic pattern takes minutes here). The patterns are the shapes that
made them quadratic before: long runs with no terminator, many unclosed starts."""
from __future__ import annotations

import time
from email.message import EmailMessage

import pytest

from channels.core.choices import resolve_numbered_choice
from channels.core.messages import clean_text
from channels.email.mime import html_to_text, parse_email, strip_reply
from crm import contacts
from crm.i18n import language, protect

MB = 1_000_000
SHAPES = {
    "letters": "a", "capitals": "A", "digits": "1", "zeros and spaces": "0 ", "at signs": "a@", "dots": "a.",
    "dashes": "a-", "international": "+1 ", "order prefix": "cd", "hashes": "#1", "slashes": "1/", "words": "hello 12 ",
    "unclosed tags": "<a ", "unclosed attributes": "<a href='", "comments": "<!--", "braces": "{{",
    "urls": "www.", "schemes": "http://", "amounts": "1 € ", "thousands": "1,000", "quotes": "> ", "newlines": "\n",
    "attributions": "On Monday x wrote:\n",
}
EDGE = {  # what runs on the whole text, before the length limit
    "clean_text": clean_text,
    "detect_language": language.detect_language,
    "explicit_request": language.explicit_request,
    "extract_order_number": contacts.extract_order_number,
    "extract_email": contacts.extract_email,
    "extract_phone": contacts.extract_phone,
    "numbered_choice": lambda text: resolve_numbered_choice(text, [{"title": "Track", "payload": "/track"}]),
    "strip_reply": strip_reply,
    "html_to_text": html_to_text,
}


def megabyte(shape: str) -> str:
    return (shape * (MB // len(shape) + 1))[:MB]


def seconds(fn, text: str) -> float:
    start = time.perf_counter()
    fn(text)
    return time.perf_counter() - start


@pytest.fixture(scope="module", autouse=True)
def _warm():
    language.detect_language("warm the n-gram model up once")  # loading it is not part of a message's cost


@pytest.mark.parametrize("shape", SHAPES)
def test_every_edge_function_reads_a_megabyte_well_under_a_second(shape):
    text = megabyte(SHAPES[shape])
    slow = {name: round(t, 2) for name, fn in EDGE.items() if (t := seconds(fn, text)) > 1.0}
    assert not slow, f"on 1 MB of {shape!r}: {slow}"


@pytest.mark.parametrize("shape", ["unclosed tags", "comments", "letters", "newlines"])
def test_a_megabyte_email_is_parsed_well_under_a_second(shape):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "shopper@example.com", "support@shop.test", "Order CD-100001"
    msg.set_content(megabyte(SHAPES[shape]))
    msg.add_alternative(f"<html><body>{megabyte(SHAPES[shape])}</body></html>", subtype="html")
    raw = msg.as_bytes()
    start = time.perf_counter()
    parsed = parse_email(raw)
    assert time.perf_counter() - start < 1.5 and parsed.from_addr == "shopper@example.com"


@pytest.mark.parametrize("shape", SHAPES)
def test_protection_for_translation_is_linear(shape):
    """protect() only sees messages within the length limit (4,000 characters), so it gets a looser budget
    on 1 MB — still seconds, where a quadratic pattern takes minutes."""
    text = megabyte(SHAPES[shape])
    assert seconds(protect.protect, text) < 3.0, shape
