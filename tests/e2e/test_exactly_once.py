"""A message is answered once, whatever dies when.

The app process is SIGKILLed while a WhatsApp reply is on its way to the Graph API (Rasa has answered, the
reply is recorded, the send is in flight). After a restart, the inbox worker picks the message up again —
and must neither ask Rasa a second time nor send the shopper a second answer.
"""
from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import text

from tests.e2e.conftest import rasa_api, staff_api
from tests.e2e.test_whatsapp_e2e import new_phone, post, replies_to, webhook

pytestmark = pytest.mark.e2e


def _wait(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _inbox_status(stack, wamid: str) -> str | None:
    from crm.db import make_engine

    engine = make_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT status FROM inbound_queue WHERE external_id = :w"), {"w": wamid}).scalar()
    finally:
        engine.dispose()


def test_a_killed_app_mid_send_answers_once_and_asks_rasa_once(live_stack, fake_graph):
    phone = new_phone()
    fake_graph.hold_next(1)
    body, wamid = webhook(phone, "hello")
    try:
        assert post(live_stack, body).status_code == 200
        # Rasa answered, the reply is recorded and its send reached the Graph API, which does not answer yet
        _wait(lambda: any(str((r.get("body") or {}).get("to", "")).lstrip("+") == phone
                          for r in list(fake_graph.received)), what="the reply send to reach the Graph API")
        live_stack.kill_process("app")
    finally:
        fake_graph.release()
    live_stack.restart_app()
    _wait(lambda: _inbox_status(live_stack, wamid) == "done", what="the inbox item to be done after the restart")
    time.sleep(2)  # room for a wrong second answer to show up
    sent = [r for r in list(fake_graph.received) if str((r.get("body") or {}).get("to", "")).lstrip("+") == phone]
    assert len(sent) == 1, sent  # the one that was in flight; nothing sent again
    tracker = httpx.get(rasa_api(live_stack, f"/conversations/whatsapp:+{phone}/tracker")).json()
    user_turns = [e for e in tracker["events"] if e["event"] == "user"]
    assert [e["text"] for e in user_turns] == ["hello"]  # Rasa was not asked again
    transcript = staff_api(live_stack).get(f"/api/conversations/whatsapp:+{phone}/messages").json()
    outbound = [m for m in transcript if m["direction"] == "out"]
    assert outbound and {m["delivery_status"] for m in outbound} == {"unconfirmed"}, outbound
    # the conversation goes on normally afterwards
    before = len(replies_to(fake_graph, phone))
    body, _ = webhook(phone, "where is my order")
    assert post(live_stack, body).status_code == 200
    _wait(lambda: len(replies_to(fake_graph, phone)) > before, what="the next answer")
