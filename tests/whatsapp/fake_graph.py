"""A fake WhatsApp Cloud API (POST /{phone-number-id}/messages) served over real HTTP for the tests.

It behaves like Meta where the sender could get it wrong: Bearer token (401 + OAuthException 190),
strict body validation with Meta's limits (400 + code 100 with the reason in error_data.details), Meta's
success shape, and scripted failures (`fail_next(n, code)`: 131047, 130429, 131056, 131000/500, ...).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

DEFAULT_STATUS = {131047: 400, 130429: 400, 131056: 400, 80007: 400, 4: 400, 131026: 400, 131051: 400,
                  100: 400, 131000: 500, 1: 500, 2: 503}
TITLES = {131047: "Re-engagement message", 130429: "Rate limit hit",
          131056: "(Business Account, Consumer Account) pair rate limit hit", 131000: "Something went wrong",
          131026: "Message Undeliverable", 131051: "Unsupported message type", 100: "Invalid parameter"}


class Invalid(ValueError):
    pass


def _check(cond: bool, details: str) -> None:
    if not cond:
        raise Invalid(details)


def _text(value: Any, what: str, max_len: int, min_len: int = 1) -> None:
    _check(isinstance(value, str), f"{what} must be a string")
    _check(min_len <= len(value) <= max_len, f"{what} must be {min_len}..{max_len} characters, got {len(value)}")


def _keys(obj: Any, what: str, required: set[str], optional: set[str] = frozenset()) -> None:
    _check(isinstance(obj, dict), f"{what} must be an object")
    missing = required - obj.keys()
    _check(not missing, f"{what} is missing {sorted(missing)}")
    unknown = obj.keys() - required - optional
    _check(not unknown, f"{what} has unexpected parameter(s) {sorted(unknown)}")


def validate(body: Any) -> None:
    _keys(body, "message", {"messaging_product", "to", "type"},
          {"recipient_type", "text", "interactive", "template", "context", "biz_opaque_callback_data"})
    _check(body["messaging_product"] == "whatsapp", "messaging_product must be 'whatsapp'")
    _check(body.get("recipient_type") == "individual", "recipient_type must be 'individual'")
    to = body["to"]
    _check(isinstance(to, str) and to.lstrip("+").isdigit() and 6 <= len(to.lstrip("+")) <= 15,
           "to must be a phone number")
    kind = body["type"]
    _check(kind in ("text", "interactive", "template"), f"unsupported type {kind!r}")
    others = {"text", "interactive", "template"} - {kind}
    _check(not (others & body.keys()), f"type {kind} must not carry {sorted(others & body.keys())}")
    _check(kind in body, f"missing {kind} object")
    if kind == "text":
        _keys(body["text"], "text", {"body"}, {"preview_url"})
        _text(body["text"]["body"], "text.body", 4096)
        _check(isinstance(body["text"].get("preview_url", False), bool), "text.preview_url must be a boolean")
    elif kind == "interactive":
        _validate_interactive(body["interactive"])
    else:
        tpl = body["template"]
        _keys(tpl, "template", {"name", "language"}, {"components"})
        _text(tpl["name"], "template.name", 512)
        _keys(tpl["language"], "template.language", {"code"}, {"policy"})
        _text(tpl["language"]["code"], "template.language.code", 15, 2)
        _check(isinstance(tpl.get("components", []), list), "template.components must be a list")


def _validate_interactive(inter: Any) -> None:
    _keys(inter, "interactive", {"type", "body", "action"}, {"header", "footer"})
    _keys(inter["body"], "interactive.body", {"text"})
    _text(inter["body"]["text"], "interactive.body.text", 1024)
    if "footer" in inter:
        _keys(inter["footer"], "interactive.footer", {"text"})
        _text(inter["footer"]["text"], "interactive.footer.text", 60)
    action = inter["action"]
    if inter["type"] == "button":
        _keys(action, "interactive.action", {"buttons"})
        buttons = action["buttons"]
        _check(isinstance(buttons, list) and 1 <= len(buttons) <= 3, "1..3 reply buttons are allowed")
        for b in buttons:
            _keys(b, "button", {"type", "reply"})
            _check(b["type"] == "reply", "button type must be 'reply'")
            _keys(b["reply"], "button.reply", {"id", "title"})
            _text(b["reply"]["id"], "button.reply.id", 256)
            _text(b["reply"]["title"], "button.reply.title", 20)
        _check(len({b["reply"]["id"] for b in buttons}) == len(buttons), "button ids must be unique")
        _check(len({b["reply"]["title"] for b in buttons}) == len(buttons), "button titles must be unique")
    elif inter["type"] == "list":
        _keys(action, "interactive.action", {"button", "sections"})
        _text(action["button"], "action.button", 20)
        sections = action["sections"]
        _check(isinstance(sections, list) and 1 <= len(sections) <= 10, "1..10 sections are allowed")
        rows = []
        for s in sections:
            _keys(s, "section", {"rows"}, {"title"})
            if len(sections) > 1 or "title" in s:
                _text(s.get("title"), "section.title", 24)
            _check(isinstance(s["rows"], list) and s["rows"], "a section needs rows")
            rows.extend(s["rows"])
        _check(len(rows) <= 10, f"at most 10 rows in all sections, got {len(rows)}")
        for r in rows:
            _keys(r, "row", {"id", "title"}, {"description"})
            _text(r["id"], "row.id", 200)
            _text(r["title"], "row.title", 24)
            if "description" in r:
                _text(r["description"], "row.description", 72)
        _check(len({r["id"] for r in rows}) == len(rows), "row ids must be unique")
    else:
        raise Invalid(f"unsupported interactive type {inter['type']!r}")


def meta_error(code: int, message: str, details: str | None = None, type_: str = "OAuthException") -> dict:
    err: dict[str, Any] = {"message": message, "type": type_, "code": code, "fbtrace_id": "AbCdEfFakeTrace"}
    if details:
        err["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": err}


class FakeGraph:
    def __init__(self, token: str = "test-token", phone_number_id: str = "106540352242922"):
        self.token, self.phone_number_id = token, phone_number_id
        self.accepted: list[dict] = []  # bodies of the messages "sent"
        self.received: list[dict] = []  # every request: {"path", "auth", "body", "status"}
        self._failures: list[tuple[int, int]] = []  # (code, http status) for the next calls
        self._hold = 0  # the next calls wait (a provider that takes forever) until `release()`
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.app = self._make_app()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def reset(self) -> None:
        with self._lock:
            self.accepted.clear()
            self.received.clear()
            self._failures.clear()
            self._hold = 0
        self._released.set()

    def hold_next(self, n: int = 1) -> None:
        """The next n valid sends are received but not answered until `release()` (a send in flight)."""
        with self._lock:
            self._hold += n
            self._released.clear()

    def release(self) -> None:
        self._released.set()

    def fail_next(self, n: int, code: int, status: int | None = None) -> None:
        with self._lock:
            self._failures.extend([(code, status or DEFAULT_STATUS.get(code, 400))] * n)

    def _make_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{phone_number_id}/messages")
        async def messages(phone_number_id: str, request: Request):
            auth = request.headers.get("authorization", "")
            raw = await request.body()
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            record = {"path": request.url.path, "auth": auth, "body": body}
            with self._lock:
                self.received.append(record)

            def answer(status: int, content: dict) -> JSONResponse:
                record["status"] = status
                return JSONResponse(content, status_code=status)

            if auth != f"Bearer {self.token}":
                return answer(401, meta_error(190, "Invalid OAuth access token - Cannot parse access token"))
            if phone_number_id != self.phone_number_id:
                return answer(400, meta_error(100, "Unsupported post request. Object with ID "
                                                   f"'{phone_number_id}' does not exist", type_="GraphMethodException"))
            try:
                validate(body)
            except Invalid as exc:
                return answer(400, meta_error(100, "(#100) Invalid parameter", str(exc)))
            with self._lock:
                held = self._hold > 0
                self._hold -= 1 if held else 0
            if held:
                while not self._released.is_set():
                    await asyncio.sleep(0.05)
            with self._lock:
                failure = self._failures.pop(0) if self._failures else None
            if failure:
                code, status = failure
                title = TITLES.get(code, "Error")
                return answer(status, meta_error(code, f"(#{code}) {title}", title))
            wamid = f"wamid.FAKE{next(self._ids):06d}"
            with self._lock:
                self.accepted.append(body)
            return answer(200, {"messaging_product": "whatsapp",
                                "contacts": [{"input": body["to"], "wa_id": body["to"].lstrip("+")}],
                                "messages": [{"id": wamid}]})

        return app

    def start(self) -> FakeGraph:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake Graph API did not start")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeGraph:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
