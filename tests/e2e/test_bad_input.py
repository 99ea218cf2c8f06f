"""Bad input gets a clear 4xx or a helpful reply, never a 500, and the conversation still works after."""
from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("body, status, fragment", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1,2]", 400, "JSON object"),
    (b'{"sender": "x"}', 400, "'message' must be a string"),
    (b'{"message": "hi"}', 400, "'sender'"),
    (b'{"sender": "", "message": "hi"}', 400, "'sender'"),
    (b'{"sender": "x", "message": ""}', 400, "empty"),
    (b'{"sender": "x", "message": "   \\n\\t "}', 400, "empty"),
    (b'{"sender": "x", "message": 5}', 400, "must be a string"),
    (b'{"sender": "x", "message": "hi", "metadata": "oops"}', 400, "metadata"),
    (b'{"sender": "x", "message": "\\u0000\\u0001\\u0002"}', 400, "empty"),
])
def test_malformed_requests_get_clear_errors(live_stack, body, status, fragment):
    resp = httpx.post(f"{live_stack.app_url}/webhooks/rest/webhook", content=body,
                      headers={"content-type": "application/json"})
    assert resp.status_code == status, resp.text
    assert fragment.lower() in resp.json()["error"].lower()


def test_oversized_message_and_body(live_stack):
    url = f"{live_stack.app_url}/webhooks/rest/webhook"
    resp = httpx.post(url, json={"sender": "big", "message": "a" * 10_000})
    assert resp.status_code == 413 and "shorter" in resp.json()["error"]
    resp = httpx.post(url, content=b"x" * 200_000, headers={"content-type": "application/json"})
    assert resp.status_code == 413


def test_conversation_survives_bad_input(chat, live_stack):
    c = chat()
    url = f"{live_stack.app_url}/webhooks/rest/webhook"
    httpx.post(url, json={"sender": c.sender, "message": ""})
    httpx.post(url, json={"sender": c.sender, "message": "b" * 10_000})
    reply = c.text("hel\x00lo\x07 \u200b")  # control and zero-width characters are stripped
    assert "crossdesk assistant" in reply
    assert "order number" in c.text("where is my order")


def test_unknown_sender_is_a_new_conversation(chat):
    assert "crossdesk assistant" in chat(sender="never-seen-before-☃").text("hi")


def test_health_and_openapi(live_stack):
    assert httpx.get(f"{live_stack.app_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{live_stack.app_url}/readyz").json()
    assert ready["checks"] == {"database": True, "rasa": True, "inbox_worker": True}
    spec = httpx.get(f"{live_stack.app_url}/openapi.json").json()
    assert "/webhooks/rest/webhook" in spec["paths"]
