"""Postmark inbound webhook (same rules as IMAP mail) and settings from the environment."""
from __future__ import annotations

import base64

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from channels.core.limits import InputLimits
from channels.email.api import parse_postmark, router
from crm.config import SettingsError, settings_from
from channels.email.mime import parse_email, thread_key
from tests.email.conftest import WEBHOOK_AUTH


class FakeInbox:
    def __init__(self, fail: bool = False):
        self.accepted: list = []
        self.fail = fail

    async def accept(self, inbound):
        if self.fail:
            raise RuntimeError("database down")
        self.accepted.append(inbound)


@pytest.fixture(autouse=True)
def _database(app_db):
    """Threading looks our own replies up in the database (SQLite and PostgreSQL)."""
    return app_db


def make_client(inbox: FakeInbox | None = None, auth=WEBHOOK_AUTH) -> tuple[TestClient, FakeInbox]:
    app = FastAPI()
    app.include_router(router)
    app.state.inbox = inbox or FakeInbox()
    app.state.limits = InputLimits(settings_from({}))
    client = TestClient(app)
    client.auth = auth
    return client, app.state.inbox


def payload(**overrides) -> dict:
    data = {
        "From": "jane@example.com", "FromName": "Jane Doe",
        "FromFull": {"Email": "Jane@Example.com", "Name": "Jane Doe", "MailboxHash": ""},
        "To": "support@shop.test", "ToFull": [{"Email": "support@shop.test", "Name": "", "MailboxHash": ""}],
        "Subject": "Re: Order CD-104233", "MessageID": "22c74902-a0c1-4511-804f-341342852c90",
        "Date": "Wed, 1 May 2024 12:00:00 +0200",
        "TextBody": "Please cancel it.\n\nOn Tue, 30 Apr 2024 at 09:00, Shop <support@shop.test> wrote:\n> Cancel?",
        "HtmlBody": "<p>Please cancel it.</p><blockquote>Cancel?</blockquote>",
        "StrippedTextReply": "Please cancel it.",
        "Headers": [{"Name": "Message-ID", "Value": "<reply2@mail.example.com>"},
                    {"Name": "In-Reply-To", "Value": "<bot1@shop.test>"},
                    {"Name": "References", "Value": "<root@mail.example.com> <bot1@shop.test>"},
                    {"Name": "X-Spam-Status", "Value": "No"}],
        "Attachments": [{"Name": "photo.jpg", "Content": base64.b64encode(b"\xff\xd8 jpeg").decode(),
                         "ContentType": "image/jpeg", "ContentLength": 7}],
    }
    data.update(overrides)
    return data


def test_postmark_inbound_is_accepted_with_threading():
    client, inbox = make_client()
    resp = client.post("/webhooks/email/postmark", json=payload())
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] is True
    (inbound,) = inbox.accepted
    assert inbound.channel == "email" and inbound.text == "Please cancel it."
    assert inbound.external_id == "<reply2@mail.example.com>"
    assert inbound.metadata["from"] == "jane@example.com" and inbound.metadata["name"] == "Jane Doe"
    assert inbound.metadata["order_hint"] == "CD-104233"
    assert inbound.metadata["references"] == ["<root@mail.example.com>", "<bot1@shop.test>"]
    assert inbound.metadata["attachments"] == [{"filename": "photo.jpg", "content_type": "image/jpeg", "size": 7}]
    # <bot1@shop.test> is not a Message-ID we issued: the reply starts a conversation of its own, not the
    # one of the customer's first email (that would need one of our own replies' ids)
    first = parse_email(b"From: Jane <jane@example.com>\nSubject: Order CD-104233\n"
                        b"Message-ID: <root@mail.example.com>\n\nWhere is it?\n")
    assert inbound.sender_id != thread_key(first)


def test_postmark_html_only_and_missing_message_id_header():
    parsed = parse_postmark(payload(TextBody="", HtmlBody="<p>Hola, <b>¿dónde</b> está mi pedido?</p>",
                                    Headers=[], StrippedTextReply=""))
    assert parsed.text == "Hola, ¿dónde está mi pedido?"
    assert parsed.message_id == "<22c74902-a0c1-4511-804f-341342852c90@inbound.postmarkapp.com>"


@pytest.mark.parametrize("headers", [
    [{"Name": "Auto-Submitted", "Value": "auto-replied"}],
    [{"Name": "X-Autoreply", "Value": "yes"}],
    [{"Name": "Precedence", "Value": "bulk"}],
    [{"Name": "List-Unsubscribe", "Value": "<mailto:u@x>"}],
    [{"Name": "X-Auto-Response-Suppress", "Value": "OOF"}],
])
def test_postmark_automated_mail_is_ignored(headers):
    client, inbox = make_client()
    resp = client.post("/webhooks/email/postmark", json=payload(Headers=headers))
    assert resp.status_code == 200 and "ignored" in resp.json()
    assert inbox.accepted == []


def test_postmark_bounce_sender_is_ignored():
    client, inbox = make_client()
    resp = client.post("/webhooks/email/postmark",
                       json=payload(From="MAILER-DAEMON@mx.test", FromFull={"Email": "MAILER-DAEMON@mx.test"}))
    assert resp.json() == {"ignored": "system sender (mailer-daemon)"} and inbox.accepted == []


@pytest.mark.parametrize("body,fragment", [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"Subject": "x"}', "From"),
    (b'{"FromFull": {"Email": "not an address"}}', "not valid"),
    (b'{"From": "a@example.com", "Headers": "x"}', "Headers"),
    (b'{"From": "a@example.com", "TextBody": 5}', "TextBody"),
    (b'{"From": "a@example.com", "Attachments": {}}', "Attachments"),
])
def test_postmark_malformed_is_400(body, fragment):
    client, inbox = make_client()
    resp = client.post("/webhooks/email/postmark", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 400 and fragment in resp.json()["error"]
    assert inbox.accepted == []


def test_postmark_header_injection_is_neutralised():
    parsed = parse_postmark(payload(Subject="Hi\r\nBcc: victim@example.com",
                                    Headers=[{"Name": "Message-ID", "Value": "<a@b>\r\nX-Evil: 1"}]))
    assert parsed.subject == "Hi Bcc: victim@example.com"
    assert parsed.message is not None and parsed.message.get("Bcc") is None and parsed.message.get("X-Evil") is None


def test_postmark_basic_auth():
    client, inbox = make_client(auth=None)
    assert client.post("/webhooks/email/postmark", json=payload()).status_code == 401
    assert client.post("/webhooks/email/postmark", json=payload(), auth=("postmark", "wrong")).status_code == 401
    assert client.post("/webhooks/email/postmark", json=payload(),
                       headers={"Authorization": "Basic !!notbase64"}).status_code == 401
    resp = client.post("/webhooks/email/postmark", json=payload(), auth=WEBHOOK_AUTH)
    assert resp.status_code == 200 and len(inbox.accepted) == 1


def test_postmark_webhook_fails_closed_without_credentials(monkeypatch):
    from crm import config

    monkeypatch.delenv("EMAIL_WEBHOOK_USER")
    monkeypatch.delenv("EMAIL_WEBHOOK_PASSWORD")
    config.get_settings.cache_clear()
    client, inbox = make_client(auth=None)
    assert client.post("/webhooks/email/postmark", json=payload()).status_code == 401
    assert client.post("/webhooks/email/postmark", json=payload(), auth=("", "")).status_code == 401
    assert inbox.accepted == []


def test_inbox_failure_makes_postmark_retry():
    client, _ = make_client(FakeInbox(fail=True))
    resp = client.post("/webhooks/email/postmark", json=payload())
    assert resp.status_code == 503


def test_settings_from_the_environment():
    s = settings_from({"IMAP_HOST": "imap.shop.test", "IMAP_USER": "support@shop.test", "IMAP_PASSWORD": "imap-s3cret",
                       "SMTP_HOST": "smtp.shop.test", "SMTP_FROM": "Shop <support@shop.test>",
                       "IMAP_POLL_INTERVAL": "15"}).email
    assert (s.imap_port, s.imap_ssl, s.smtp_port, s.smtp_starttls, s.imap_interval_s) == (993, True, 587, True, 15.0)
    assert s.imap_enabled and s.smtp_enabled
    assert s.make_poller().mailbox == "INBOX" and s.make_sender().from_addr == "Shop <support@shop.test>"
    assert s.own_addresses == ("Shop <support@shop.test>", "support@shop.test")
    assert "imap-s3cret" not in repr(s)  # passwords stay out of logs
    s = settings_from({"IMAP_SSL": "false", "SMTP_SSL": "1", "SMTP_PORT": ""}).email
    assert (s.imap_port, s.smtp_port, s.smtp_starttls, s.imap_enabled, s.smtp_enabled) == (143, 465, False, False, False)
    assert settings_from({"SMTP_SSL": "1", "SMTP_STARTTLS": "yes", "IMAP_PORT": "1143"}).email.smtp_starttls
    assert settings_from({"IMAP_PORT": "1143", "IMAP_SSL": "off"}).email.imap_port == 1143
    s = settings_from({"EMAIL_WEBHOOK_USER": "pm", "EMAIL_WEBHOOK_PASSWORD": "pw",
                       "EMAIL_AUTHSERV_ID": " mx.shop.test "}).email
    assert s.webhook_credentials == ("pm", "pw") and s.authserv_id == "mx.shop.test"
    assert settings_from({"EMAIL_WEBHOOK_USER": "pm", "EMAIL_WEBHOOK_PASSWORD": " "}).email.webhook_credentials is None


@pytest.mark.parametrize("env, message", [
    ({"IMAP_PORT": "abc"}, "IMAP_PORT must be an integer, got 'abc'"),
    ({"SMTP_PORT": "70000"}, "SMTP_PORT"),
    ({"SMTP_FROM": "nope"}, "SMTP_FROM is not a valid address: 'nope'"),
    ({"IMAP_POLL_INTERVAL": "often"}, "IMAP_POLL_INTERVAL must be a number of seconds, got 'often'"),
    ({"IMAP_POLL_INTERVAL": "0"}, "IMAP_POLL_INTERVAL must be more than 0 seconds"),
    ({"IMAP_SSL": "maybe"}, "IMAP_SSL must be true or false"),
])
def test_invalid_settings_are_refused_naming_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        settings_from(env)


def test_invalid_settings_stop_get_settings_not_a_request(monkeypatch):
    from crm import config

    monkeypatch.setenv("SMTP_PORT", "twenty-five")
    monkeypatch.setenv("EMAIL", "someone@example.com")  # a shell's $EMAIL is not the email section
    config.get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match="SMTP_PORT must be an integer"):
            config.get_settings()
        monkeypatch.delenv("SMTP_PORT")
        config.get_settings.cache_clear()
        assert config.get_settings().email.smtp_port == 587
    finally:
        config.get_settings.cache_clear()
