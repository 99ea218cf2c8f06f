"""The web chat's WebSocket protocol and history endpoint, spoken by a plain `websockets` client against the
real stack; BotUnavailable and the rate limits on a small app with a stand-in for Rasa."""
from __future__ import annotations

import json
import secrets

import httpx
import pytest
from websockets.sync.client import connect

from channels.core.limits import InputLimits
from channels.core.rasa_client import BotUnavailable
from crm.config import settings_from


def new_session() -> str:
    return secrets.token_urlsafe(16)


def ws_url(live_stack, session: str) -> str:
    return live_stack.app_url.replace("http://", "ws://") + f"/ws/chat?session={session}"


def frames_until(ws, kind: str, timeout: float = 60) -> list[dict]:
    """Frames up to and including the first of type `kind`."""
    out = []
    while True:
        frame = json.loads(ws.recv(timeout=timeout))
        out.append(frame)
        if frame["type"] == kind:
            return out


@pytest.mark.e2e
def test_message_gets_ack_typing_and_replies(live_stack):
    with connect(ws_url(live_stack, new_session())) as ws:
        ws.send(json.dumps({"type": "hello", "locale": "en-GB"}))
        ws.send(json.dumps({"type": "message", "text": "where is my order", "client_id": "c-1"}))
        frames = frames_until(ws, "message")
    assert [f["type"] for f in frames] == ["ack", "typing", "message"]
    assert frames[0]["client_id"] == "c-1"
    reply = frames[2]
    assert reply["author"] == "bot" and "order number" in reply["text"].lower()
    assert reply["ts"].endswith("+00:00") and isinstance(reply["buttons"], list)


@pytest.mark.e2e
@pytest.mark.parametrize("frame, fragment", [
    ("{not json", "not valid json"),
    ("[1, 2]", "json object"),
    ('{"type": "shout", "text": "hi"}', "unknown frame type"),
    ('{"type": "message", "text": ""}', "empty"),
    ('{"type": "message", "text": "  \\n\\t \\u0000\\u200b "}', "empty"),
    ('{"type": "message", "text": 5}', "must be a string"),
    ('{"type": "button", "title": "x"}', "must be a string"),
    (json.dumps({"type": "message", "text": "a" * 5000}), "shorter"),
    (json.dumps({"type": "message", "text": "a" * 70_000}), "frame over"),
])
def test_bad_frames_get_an_error_and_the_socket_stays_open(live_stack, frame, fragment):
    with connect(ws_url(live_stack, new_session())) as ws:
        ws.send(frame)
        error = json.loads(ws.recv(timeout=10))
        assert error["type"] == "error" and fragment in error["message"].lower(), error
        ws.send(json.dumps({"type": "message", "text": "where is my order", "client_id": "after"}))
        frames = frames_until(ws, "message")
        assert "order number" in frames[-1]["text"].lower()


@pytest.mark.e2e
def test_binary_frame_and_error_echo_client_id(live_stack):
    with connect(ws_url(live_stack, new_session())) as ws:
        ws.send(b"\x00\x01")
        assert json.loads(ws.recv(timeout=10))["type"] == "error"
        ws.send(json.dumps({"type": "message", "text": " ", "client_id": "abc-1"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "error", "message": "the message is empty",
                                                    "client_id": "abc-1"}


@pytest.mark.e2e
@pytest.mark.parametrize("session", ["short", "x" * 65, "has:colon-1234567890", "dots.are.not.ok.12345"])
def test_invalid_session_is_refused(live_stack, session):
    with connect(ws_url(live_stack, session)) as ws:
        assert json.loads(ws.recv(timeout=10))["message"] == "invalid session id"
        with pytest.raises(Exception):
            ws.recv(timeout=10)
        assert ws.close_code == 1008
    resp = httpx.get(f"{live_stack.app_url}/api/web/{session}/history")
    assert resp.status_code in (400, 404)


@pytest.mark.e2e
def test_history(live_stack, chat):
    session = new_session()
    base = live_stack.app_url
    assert httpx.get(f"{base}/api/web/{session}/history").json() == {"messages": []}  # unknown = empty
    with connect(ws_url(live_stack, session)) as ws:
        ws.send(json.dumps({"type": "message", "text": "hi <b>there</b>", "client_id": "h1"}))
        frames_until(ws, "message")
    resp = httpx.get(f"{base}/api/web/{session}/history")
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
    messages = resp.json()["messages"]
    assert messages[0]["author"] == "shopper" and messages[0]["text"] == "hi <b>there</b>"
    assert messages[1]["author"] == "bot" and messages[1]["ts"]
    # a REST conversation with a web-looking sender is not readable through the web history
    rest = chat(sender=new_session())
    rest.text("hi")
    assert httpx.get(f"{base}/api/web/{rest.sender}/history").json() == {"messages": []}
    assert httpx.get(f"{base}/api/web/bad%3Aid%3A0123456789abc/history").status_code == 400


@pytest.mark.e2e
def test_pages_and_assets(live_stack):
    base = live_stack.app_url
    page = httpx.get(f"{base}/chat")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'role="log"' in page.text and 'aria-live="polite"' in page.text
    widget = httpx.get(f"{base}/widget.js")
    assert widget.status_code == 200 and "javascript" in widget.headers["content-type"]
    for name in ("chat.js", "chat.css"):
        assert httpx.get(f"{base}/web/static/{name}").status_code == 200
    for bad in ("../api.py", "..%2Fapi.py", "nope.js", ".hidden.js", "api.py"):
        assert httpx.get(f"{base}/web/static/{bad}").status_code == 404, bad


# --- the same router on a small app: Rasa down, rate limit -------------------------------------------------

class FakePipeline:
    """Stands in for the bot only; its replies leave through the real web hub, like the outbound layer's."""

    def __init__(self, fail: bool = False):
        self.fail, self.seen, self.hub = fail, [], None

    async def handle_inbound(self, msg):
        self.seen.append(msg)
        if self.fail:
            raise BotUnavailable("down")
        from channels.core.messages import Button, OutboundMessage
        replies = [OutboundMessage("one"), OutboundMessage("two", buttons=(Button("Yes", "/affirm"),))]
        await self.hub.send(msg.sender_id, replies, None)
        return replies


def small_app(pipeline, rate_limit: int = 30):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from channels.web.api import router
    from channels.web.hub import WebHub

    app = FastAPI()
    app.include_router(router)
    app.state.pipeline = pipeline
    app.state.limits = InputLimits(settings_from({}, sender_rate_limit=rate_limit))  # in memory, as without Redis
    app.state.web_hub = pipeline.hub = WebHub(None)
    return TestClient(app)


def test_bot_unavailable_says_the_message_was_saved():
    session = new_session()
    with small_app(FakePipeline(fail=True)) as client:
        with client.websocket_connect(f"/ws/chat?session={session}") as ws:
            ws.send_text(json.dumps({"type": "message", "text": "hello", "client_id": "x1"}))
            assert ws.receive_json() == {"type": "ack", "client_id": "x1"}
            assert ws.receive_json() == {"type": "typing"}
            error = ws.receive_json()
            assert error["type"] == "error" and "saved" in error["message"] and "retry" in error["message"]


def test_frames_reach_the_pipeline_normalized_and_rate_limited():
    session, pipeline = new_session(), FakePipeline()
    with small_app(pipeline, rate_limit=2) as client:
        with client.websocket_connect(f"/ws/chat?session={session}") as ws:
            ws.send_text(json.dumps({"type": "hello", "locale": "de-DE"}))
            ws.send_text(json.dumps({"type": "message", "text": " Hallo\u0000 ", "client_id": "a"}))
            frames = [ws.receive_json() for _ in range(4)]
            assert [f["type"] for f in frames] == ["ack", "typing", "message", "message"]
            assert frames[3]["buttons"] == [{"title": "Yes", "payload": "/affirm"}]
            ws.send_text(json.dumps({"type": "button", "payload": "/affirm", "title": "Yes", "client_id": "b"}))
            assert [ws.receive_json()["type"] for _ in range(4)] == ["ack", "typing", "message", "message"]
            ws.send_text(json.dumps({"type": "message", "text": "again", "client_id": "c"}))
            error = ws.receive_json()
            assert error["type"] == "error" and "quickly" in error["message"] and error["client_id"] == "c"
    first, button = pipeline.seen
    assert (first.channel, first.sender_id, first.text) == ("web", session, "Hallo")
    assert first.metadata == {"locale": "de-DE"}
    assert button.text == "/affirm" and button.metadata == {"locale": "de-DE", "button_title": "Yes"}


def test_fresh_session_ids_do_not_escape_the_per_client_rate():
    """One client opening a new session for every message is still one client: 4 × the per-session rate."""
    pipeline = FakePipeline()
    with small_app(pipeline, rate_limit=2) as client:
        refused = 0
        for _ in range(12):
            with client.websocket_connect(f"/ws/chat?session={new_session()}") as ws:
                ws.send_text(json.dumps({"type": "message", "text": "hi", "client_id": "x"}))
                first = ws.receive_json()
                if first["type"] == "error":
                    assert "quickly" in first["message"]
                    refused += 1
                else:
                    [ws.receive_json() for _ in range(3)]
    assert len(pipeline.seen) == 8 and refused == 4
