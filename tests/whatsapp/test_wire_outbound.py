from __future__ import annotations

from channels.core.choices import resolve_numbered_choice

import asyncio
import re

import httpx
import pytest

from channels.core.messages import Button, OutboundMessage
from channels.whatsapp.graph import GraphClient
from channels.whatsapp.wire import (
    ErrorKind, build_payloads, build_template, classify_error, split_text,
)
from tests.whatsapp.fake_graph import validate

TO = "+4915123456789"


def words(n: int, word: str = "parcel") -> str:
    return " ".join([word] * n)


# ---------------------------------------------------------------- text splitting


def test_short_text_is_one_message():
    [p] = build_payloads(TO, OutboundMessage("Your order shipped."))
    assert p == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "4915123456789",
                 "type": "text", "text": {"preview_url": False, "body": "Your order shipped."}}


def test_split_at_paragraph_boundary():
    first, second = "A" * 3000 + ".", "Second paragraph " + words(300)
    chunks = split_text(first + "\n\n" + second)
    assert chunks == [first, second]


def test_split_at_sentence_then_word_boundary_never_mid_word():
    text = " ".join(f"Sentence number {i} tells you about your parcel." for i in range(200))  # ~9.6k chars
    chunks = split_text(text)
    assert len(chunks) == 3
    assert all(len(c) <= 4096 for c in chunks)
    assert all(c.endswith(".") for c in chunks)
    assert " ".join(chunks) == text
    no_sentences = words(1500)  # 10,499 chars, only spaces
    chunks = split_text(no_sentences)
    assert all(len(c) <= 4096 for c in chunks)
    assert all(set(c.split()) == {"parcel"} for c in chunks)  # no word was cut
    assert " ".join(chunks) == no_sentences


def test_single_word_longer_than_limit_is_cut():
    word = "x" * 5000
    chunks = split_text("hi " + word)
    assert "".join(chunks).replace(" ", "") == "hi" + word
    assert all(len(c) <= 4096 for c in chunks)
    assert chunks[0] == "hi"


def test_exactly_limit_stays_whole():
    assert split_text("y" * 4096) == ["y" * 4096]
    assert len(split_text("y" * 4097)) == 2


# ---------------------------------------------------------------- buttons


def buttons(n: int, title=lambda i: f"Option {i}") -> tuple[Button, ...]:
    return tuple(Button(title(i), f"/choose{{\"n\": {i}}}") for i in range(1, n + 1))


def test_three_short_buttons_are_reply_buttons():
    msg = OutboundMessage("Cancel order CD-104233?", (Button("Yes", "/affirm"), Button("No", "/deny")))
    [p] = build_payloads(TO, msg)
    validate(p)
    assert p["interactive"]["type"] == "button"
    assert p["interactive"]["body"]["text"] == "Cancel order CD-104233?"
    assert [b["reply"] for b in p["interactive"]["action"]["buttons"]] == [
        {"id": "/affirm", "title": "Yes"}, {"id": "/deny", "title": "No"}]


def test_four_to_ten_buttons_or_long_title_make_a_list():
    [p] = build_payloads(TO, OutboundMessage("What can I help with?", buttons(7)), list_label="Optionen")
    validate(p)
    assert p["interactive"]["type"] == "list"
    assert p["interactive"]["action"]["button"] == "Optionen"
    [section] = p["interactive"]["action"]["sections"]
    assert [r["id"] for r in section["rows"]] == [b.payload for b in buttons(7)]
    long_title = "Change my delivery address please"  # 33 chars: > 20 (button) and > 24 (row)
    [p] = build_payloads(TO, OutboundMessage("Pick one", (Button(long_title, "/change_address"),
                                                          Button("Track my order", "/track"))))
    validate(p)
    assert p["interactive"]["type"] == "list"
    row = p["interactive"]["action"]["sections"][0]["rows"][0]
    assert len(row["title"]) <= 24 and row["title"].endswith("…")
    assert row["description"] == long_title


def test_more_than_ten_buttons_become_numbered_text_and_numbers_resolve():
    btns = buttons(12, lambda i: "Track my order" if i == 1 else f"Topic {i}")
    [p] = build_payloads(TO, OutboundMessage("Choose a topic:", btns))
    validate(p)
    assert p["type"] == "text"
    body = p["text"]["body"]
    assert body.startswith("Choose a topic:\n\n1. Track my order\n2. Topic 2\n")
    assert body.endswith("12. Topic 12")
    assert resolve_numbered_choice("2", btns) == btns[1].payload
    assert resolve_numbered_choice(" 12. ", btns) == btns[11].payload
    assert resolve_numbered_choice("#1", [{"title": b.title, "payload": b.payload} for b in btns]) == btns[0].payload
    assert resolve_numbered_choice("13", btns) is None
    assert resolve_numbered_choice("0", btns) is None
    assert resolve_numbered_choice("2 please", btns) is None
    assert resolve_numbered_choice("2", []) is None


def test_long_payload_ids_fall_back_to_numbered_text():
    long_id = "/inform" + "x" * 300
    [p] = build_payloads(TO, OutboundMessage("Which one?", (Button("A", long_id), Button("B", "/b"))))
    assert p["type"] == "text" and "1. A" in p["text"]["body"]


def test_long_body_goes_first_as_text_then_short_interactive():
    text = words(200) + ".\n\nDo you want to cancel order CD-104233?"  # 1,399 + 40 chars
    payloads = build_payloads(TO, OutboundMessage(text, (Button("Yes", "/affirm"), Button("No", "/deny"))))
    for p in payloads:
        validate(p)
    assert [p["type"] for p in payloads] == ["text", "interactive"]
    assert payloads[0]["text"]["body"] == words(200) + "."
    assert payloads[1]["interactive"]["body"]["text"] == "Do you want to cancel order CD-104233?"
    huge = words(1000)  # no boundary leaves a tail ≤ 1,024 at a sentence: all text, then a short body
    payloads = build_payloads(TO, OutboundMessage(huge, (Button("Yes", "/affirm"),)))
    for p in payloads:
        validate(p)
    assert [p["type"] for p in payloads] == ["text", "text", "interactive"]
    assert " ".join(p["text"]["body"] for p in payloads[:2]) == huge
    assert 0 < len(payloads[-1]["interactive"]["body"]["text"]) <= 1024


def test_empty_text_with_buttons_still_has_a_body():
    [p] = build_payloads(TO, OutboundMessage("", (Button("Yes", "/affirm"),)))
    validate(p)
    assert p["interactive"]["body"]["text"]


def test_template():
    p = build_template(TO, "order_update", "de", [{"type": "body", "parameters": [{"type": "text", "text": "x"}]}])
    validate(p)
    assert p["template"] == {"name": "order_update", "language": {"code": "de"},
                             "components": [{"type": "body", "parameters": [{"type": "text", "text": "x"}]}]}
    assert "components" not in build_template(TO, "hello_world", "en_US")["template"]


def test_fake_server_rejects_what_meta_rejects():
    base = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "4915123456789"}
    bad = [
        {**base, "type": "text", "text": {"body": "x" * 4097}},
        {**base, "messaging_product": "sms", "type": "text", "text": {"body": "x"}},
        {**base, "type": "interactive", "interactive": {"type": "button", "body": {"text": "q"}, "action": {
            "buttons": [{"type": "reply", "reply": {"id": f"{i}", "title": f"t{i}"}} for i in range(4)]}}},
        {**base, "type": "interactive", "interactive": {"type": "button", "body": {"text": "q"}, "action": {
            "buttons": [{"type": "reply", "reply": {"id": "1", "title": "t" * 21}}]}}},
        {**base, "type": "interactive", "interactive": {"type": "list", "body": {"text": "q"}, "action": {
            "button": "Options", "sections": [{"rows": [{"id": f"{i}", "title": "t"} for i in range(11)]}]}}},
        {**base, "type": "interactive", "interactive": {"type": "list", "body": {"text": "q"}, "action": {
            "button": "Options", "sections": [{"rows": [{"id": "1", "title": "t" * 25}]}]}}},
    ]
    for body in bad:
        with pytest.raises(ValueError):
            validate(body)


def test_every_shape_is_accepted_by_the_fake_graph_api(graph):
    """The builders' output over real HTTP: reply buttons, list, numbered text, long split text."""
    messages = [
        OutboundMessage("Hello! " * 1000),
        OutboundMessage("Yes or no?", (Button("Yes", "/affirm"), Button("No", "/deny"))),
        OutboundMessage("Topics", buttons(10)),
        OutboundMessage("Topics", buttons(11)),
        OutboundMessage(words(300), (Button("A much longer option title here", "/x"),)),
    ]
    payloads = [p for m in messages for p in build_payloads(TO, m)]

    async def send_all():
        async with httpx.AsyncClient(trust_env=False) as http:
            client = GraphClient(graph.base_url, graph.phone_number_id, graph.token, http, max_attempts=1)
            return [await client.send(p) for p in payloads]

    results = asyncio.run(send_all())
    assert all(r.ok for r in results), [r.error_title for r in results if not r.ok]
    assert all(re.fullmatch(r"wamid\.FAKE\d{6}", r.wamid) for r in results)
    assert graph.accepted == payloads
    assert [p["type"] for p in graph.accepted] == ["text", "text", "interactive", "interactive", "text",
                                                   "text", "interactive"]
    assert graph.accepted[3]["interactive"]["type"] == "list"


# ---------------------------------------------------------------- error classification


def err(code):
    return {"error": {"message": f"(#{code}) x", "type": "OAuthException", "code": code, "fbtrace_id": "A"}}


@pytest.mark.parametrize("status, body, kind", [
    (400, err(131047), ErrorKind.OUTSIDE_WINDOW),
    (400, err(130429), ErrorKind.THROTTLED),
    (400, err(131056), ErrorKind.THROTTLED),
    (400, err(80007), ErrorKind.THROTTLED),
    (400, err(4), ErrorKind.THROTTLED),
    (429, None, ErrorKind.THROTTLED),
    (500, err(131000), ErrorKind.TRANSIENT),
    (503, "<html>", ErrorKind.TRANSIENT),
    (None, None, ErrorKind.TRANSIENT),
    (400, err(131026), ErrorKind.PERMANENT),
    (400, err(131051), ErrorKind.PERMANENT),
    (400, err(100), ErrorKind.PERMANENT),
    (401, err(190), ErrorKind.PERMANENT),
    (404, None, ErrorKind.PERMANENT),
])
def test_classify_error(status, body, kind):
    assert classify_error(status, body) is kind
