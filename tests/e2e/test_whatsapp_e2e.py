"""WhatsApp end to end: signed Meta webhooks into the app, replies out to a Graph API server on loopback."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import httpx
import pytest

from crm.i18n.catalog import Texts
from crm.i18n.language import language_for_phone
from tests.e2e.conftest import WHATSAPP_SECRET
from tests.e2e.conftest import staff_api

pytestmark = pytest.mark.e2e


def webhook(phone: str, text: str | None = None, *, wamid: str | None = None, button: tuple[str, str] | None = None,
            image: bool = False) -> tuple[dict, str]:
    wamid = wamid or f"wamid.{uuid.uuid4().hex}"
    message = {"from": phone, "id": wamid, "timestamp": str(int(time.time()))}
    if button:
        message.update(type="interactive", interactive={"type": "button_reply",
                                                        "button_reply": {"id": button[0], "title": button[1]}})
    elif image:
        message.update(type="image", image={"id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "x"})
    else:
        message.update(type="text", text={"body": text})
    body = {"object": "whatsapp_business_account", "entry": [{"id": "WABA_ID", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881",
                                                      "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Shopper"}, "wa_id": phone}], "messages": [message]}}]}]}
    return body, wamid


def post(stack, body: dict, secret: str = WHATSAPP_SECRET) -> httpx.Response:
    raw = json.dumps(body).encode()
    sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return httpx.post(f"{stack.app_url}/webhooks/whatsapp", content=raw,
                      headers={"content-type": "application/json", "x-hub-signature-256": sig})


def replies_to(graph, phone: str) -> list[dict]:
    return [b for b in list(graph.accepted) if str(b.get("to", "")).lstrip("+") == phone]


def text_of(body: dict) -> str:
    if body["type"] == "text":
        return body["text"]["body"]
    if body["type"] == "interactive":
        return body["interactive"]["body"]["text"]
    return json.dumps(body)


def wait_for_replies(graph, phone: str, count: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = replies_to(graph, phone)
        if len(got) >= count:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{len(replies_to(graph, phone))} replies to {phone}, expected {count}: "
                         f"{[text_of(b) for b in replies_to(graph, phone)]}")


def settled_replies(graph, phone: str, count: int, quiet_s: float = 1.5) -> list[dict]:
    """At least `count` replies, and then nothing more for `quiet_s`: the whole turn (a turn can be several
    messages, and they arrive one by one)."""
    got = wait_for_replies(graph, phone, count)
    while True:
        time.sleep(quiet_s)
        now = replies_to(graph, phone)
        if len(now) == len(got):
            return now
        got = now


def new_phone() -> str:
    return f"4915{uuid.uuid4().int % 10**8:08d}"


def test_handshake_and_bad_signature(live_stack):
    ok = httpx.get(f"{live_stack.app_url}/webhooks/whatsapp",
                   params={"hub.mode": "subscribe", "hub.verify_token": "e2e-verify", "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    body, _ = webhook(new_phone(), "hi")
    assert post(live_stack, body, secret="wrong").status_code == 401


def test_whatsapp_phone_verifies_the_order_and_buttons_are_interactive(live_stack, fake_graph):
    phone = "447911234567"  # the phone on demo order CD-100002
    body, _ = webhook(phone, "where is my order CD-100002")
    assert post(live_stack, body).status_code == 200
    replies = settled_replies(fake_graph, phone, 1)
    text = " ".join(text_of(b) for b in replies)
    assert "import customs" in text and "email address or phone number" not in text, text
    # a greeting answers with the menu: more than 3 options → an interactive list
    body, _ = webhook(phone, "hello")
    post(live_stack, body)
    menu_turn = settled_replies(fake_graph, phone, len(replies) + 1)
    menu = menu_turn[-1]
    assert menu["type"] == "interactive" and menu["interactive"]["type"] == "list"
    replies = menu_turn
    # tapping a row sends its id (the intent payload) to the bot
    body, _ = webhook(phone, button=("/talk_to_human", "Talk to a person"))
    post(live_stack, body)
    handoff = wait_for_replies(fake_graph, phone, len(replies) + 1)[-1]
    assert "person from our team" in text_of(handoff)


def test_retried_webhook_is_answered_once_and_statuses_are_recorded(live_stack, fake_graph):
    phone = new_phone()
    body, wamid = webhook(phone, "hi there")
    assert post(live_stack, body).status_code == 200
    assert post(live_stack, body).status_code == 200  # Meta's retry of the same wamid
    wait_for_replies(fake_graph, phone, 1)
    time.sleep(1.5)
    assert len(replies_to(fake_graph, phone)) == 1
    transcript = staff_api(live_stack).get(f"/api/conversations/whatsapp:+{phone}/messages").json()
    out = [m for m in transcript if m["direction"] == "out"]
    assert out and out[-1]["delivery_status"] == "sent" and out[-1]["provider_message_id"].startswith("wamid.")
    reply_wamid = out[-1]["provider_message_id"]
    if reply_wamid:
        status = {"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "106540352242922"},
            "statuses": [{"id": reply_wamid, "status": "read", "timestamp": str(int(time.time())), "recipient_id": phone}]}}]}]}
        assert post(live_stack, status).status_code == 200
        transcript = staff_api(live_stack).get(f"/api/conversations/whatsapp:+{phone}/messages").json()
        assert [m for m in transcript if m["direction"] == "out"][-1]["delivery_status"] == "read"


def test_media_gets_a_text_only_reply(live_stack, fake_graph):
    phone = new_phone()
    body, _ = webhook(phone, image=True)
    post(live_stack, body)
    assert "only read text" in text_of(wait_for_replies(fake_graph, phone, 1)[0])


def test_nothing_lost_while_rasa_is_down(live_stack, fake_graph):
    """20 WhatsApp messages in 3 conversations while Rasa is stopped; after restart each is answered once, in order."""
    phones = [new_phone() for _ in range(3)]
    live_stack.stop_process("rasa")
    try:
        sent: dict[str, list[str]] = {p: [] for p in phones}
        expected: dict[str, list[str]] = {p: [] for p in phones}
        greetings = iter(["hello", "hi there", "hey", "good morning", "hi", "hello there", "hey there",
                          "good evening", "hiya", "good afternoon"])
        thanks = iter(["thanks", "thank you", "thanks a lot", "many thanks", "thank you so much", "thx",
                       "thanks so much", "cheers, thanks", "thank you very much", "great, thanks"])
        for n in range(20):
            phone = phones[n % 3]
            text = next(thanks) if n % 2 else next(greetings)
            body, _ = webhook(phone, text)
            assert post(live_stack, body).status_code == 200  # accepted although the bot is down
            sent[phone].append(text)
            expected[phone].append("text" if n % 2 else "menu")  # thanks → text, greeting → menu
        time.sleep(2)
        assert all(not replies_to(fake_graph, p) for p in phones)
    finally:
        live_stack.restart_rasa()
    for phone in phones:
        wait_for_replies(fake_graph, phone, len(sent[phone]), timeout=120)
    time.sleep(2)
    for phone in phones:
        replies = replies_to(fake_graph, phone)
        assert len(replies) == len(sent[phone])  # once each
        transcript = staff_api(live_stack).get(f"/api/conversations/whatsapp:+{phone}/messages").json()
        inbound = [m["text"] for m in transcript if m["direction"] == "in"]
        assert inbound == sent[phone]  # processed in the order sent
        kinds = ["menu" if r["type"] == "interactive" else "text" for r in replies]
        assert kinds == expected[phone]  # answers in order


def test_overlong_message_and_flood_get_polite_replies(live_stack, fake_graph):
    phone = new_phone()
    body, _ = webhook(phone, "x" * 5000)
    post(live_stack, body)
    # "xxxx…" says nothing about a language, so the notices follow the phone's country code
    texts = Texts(language_for_phone(f"+{phone}"))
    assert text_of(wait_for_replies(fake_graph, phone, 1)[0]) == texts("too_long", limit=4000)
    for n in range(34):  # the limit is 30 messages a minute per sender
        body, _ = webhook(phone, "hello" if n % 2 else "thanks")
        assert post(live_stack, body).status_code == 200
    wait_for_replies(fake_graph, phone, 31, timeout=120)
    time.sleep(3)
    texts = [text_of(b) for b in replies_to(fake_graph, phone)]
    # "hello"/"thanks" then decide the language (English): the slow-down notice comes in it, once
    language = staff_api(live_stack).get(f"/api/conversations/whatsapp:+{phone}").json()["language"]
    assert language == "en"
    assert sum(t == Texts(language)("slow_down") for t in texts) == 1  # one notice, not one per extra message
    assert len(texts) == 1 + 30 + 1  # too-long notice, 30 answers, one slow-down notice
    transcript = staff_api(live_stack).get(f"/api/conversations/whatsapp:+{phone}/messages").json()
    assert sum(m["direction"] == "in" for m in transcript) == 35  # nothing lost


def test_one_customer_across_whatsapp_email_and_web(live_stack, fake_graph, dovecot, smtp_capture, chat):
    from tests.e2e.test_email_e2e import deliver, wait_for_mail

    phone = "4915112345678"  # Anna Schmidt's phone (demo orders CD-100001 / CD-100011)
    body, _ = webhook(phone, "hello")
    post(live_stack, body)
    wait_for_replies(fake_graph, phone, 1)
    _, handler = smtp_capture
    before = len(handler.messages)
    deliver(dovecot, subject="A question", body="hello", sender="Anna Schmidt <anna.schmidt@example.com>")
    wait_for_mail(handler, before + 1)
    web = chat()
    web.text("where is my order CD-100001")
    web.text("anna.schmidt@example.com")  # verifying the order links the anonymous web session

    def customer_of(key: str):
        return staff_api(live_stack).get(f"/api/conversations/{key}").json()

    whatsapp_conv = customer_of(f"whatsapp:+{phone}")
    web_conv = customer_of(f"rest:{web.sender}")
    assert whatsapp_conv["customer_id"] is not None
    assert web_conv["customer_id"] == whatsapp_conv["customer_id"]
    # the email thread's conversation key is a hash of sender + thread root; find it in the database
    from crm.db import make_engine
    from sqlalchemy import text

    engine = make_engine(live_stack.database_url)
    with engine.connect() as conn:
        email_customers = conn.execute(text(
            "SELECT DISTINCT c.customer_id FROM conversations c JOIN messages m "
            "ON m.conversation_id = c.id WHERE c.channel = 'email' AND m.text = 'hello'")).all()
    engine.dispose()
    assert (whatsapp_conv["customer_id"],) in [tuple(row) for row in email_customers]
