from __future__ import annotations

import copy
import json
import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from channels.core.limits import InputLimits
from channels.whatsapp.api import WhatsAppSettings, router
from crm.config import settings_from
from crm.config import SettingsError, parse_templates, settings_from
from tests.whatsapp import payloads as P
from tests.whatsapp.test_wire_inbound import SECRET, sign


class FakeInbox:
    def __init__(self, fail: bool = False):
        self.accepted = []
        self.fail = fail

    async def accept(self, msg):
        if self.fail:
            raise RuntimeError("database down")
        if any(m.external_id == msg.external_id for m in self.accepted):
            return False
        self.accepted.append(msg)
        return True


class FakeDelivery:
    def __init__(self):
        self.calls = []

    async def record_status(self, channel, provider_message_id, status, at=None, errors=None):
        self.calls.append({"channel": channel, "provider_message_id": provider_message_id, "status": status,
                           "at": at, "errors": errors})
        return True


@pytest.fixture
def app():
    app = FastAPI()
    app.include_router(router)
    app.state.inbox = FakeInbox()
    app.state.limits = InputLimits(settings_from({}))
    app.state.delivery = FakeDelivery()
    app.state.whatsapp_settings = WhatsAppSettings(app_secret=SECRET, verify_token="verify-me",
                                                   access_token="t", phone_number_id=P.PHONE_NUMBER_ID)
    return app


@pytest.fixture
def client(app):
    return TestClient(app)


def post(client, payload, signature="auto", body: bytes | None = None):
    raw = body if body is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "auto":
        headers["X-Hub-Signature-256"] = sign(raw)
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return client.post("/webhooks/whatsapp", content=raw, headers=headers)


def test_handshake_ok_and_forbidden(client):
    ok = client.get("/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "verify-me",
                                                   "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    assert ok.headers["content-type"].startswith("text/plain")
    bad = client.get("/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "wrong",
                                                    "hub.challenge": "1158201444"})
    assert bad.status_code == 403 and "1158201444" not in bad.text


def test_signed_text_message_goes_to_the_inbox(client, app):
    resp = post(client, P.TEXT)
    assert resp.status_code == 200
    [msg] = app.state.inbox.accepted
    assert (msg.channel, msg.sender_id, msg.text) == ("whatsapp", "+4915123456789", "Where is my order CD-104233?")
    assert resp.json()["accepted"] == 1
    assert post(client, P.TEXT).json()["accepted"] == 0  # Meta's redelivery: the inbox drops the repeat


def test_button_reply_payload_reaches_the_inbox(client, app):
    assert post(client, P.BUTTON_REPLY).status_code == 200
    assert app.state.inbox.accepted[0].metadata["payload"] == "/affirm"


@pytest.mark.parametrize("case", ["tampered", "wrong_secret", "missing", "garbage"])
def test_bad_signature_is_401_and_never_processed(client, app, caplog, case):
    raw = json.dumps(P.TEXT).encode()
    signature = {"tampered": sign(raw), "wrong_secret": sign(raw, "not-the-secret"), "missing": None,
                 "garbage": "sha256=zz"}[case]
    body = raw.replace(b"CD-104233", b"CD-999999") if case == "tampered" else raw
    with caplog.at_level(logging.WARNING, logger="crossdesk.whatsapp"):
        resp = post(client, None, signature=signature, body=body)
    assert resp.status_code == 401
    assert app.state.inbox.accepted == [] and app.state.delivery.calls == []
    assert any("signature" in r.getMessage() and "testclient" in r.getMessage() for r in caplog.records)


def test_statuses_are_recorded(client, app):
    assert post(client, P.STATUS_DELIVERED).status_code == 200
    assert post(client, P.STATUS_FAILED).status_code == 200
    delivered, failed = app.state.delivery.calls
    assert delivered["channel"] == "whatsapp" and delivered["status"] == "delivered"
    assert delivered["provider_message_id"] == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA"
    assert delivered["at"].timestamp() == 1750263773
    assert failed["status"] == "failed" and failed["errors"][0]["code"] == 131047
    assert failed["errors"][0]["title"] == "Re-engagement message"
    assert app.state.inbox.accepted == []


def test_bad_json_is_400_but_only_after_the_signature(client):
    assert post(client, None, body=b"{not json").status_code == 400
    assert post(client, None, body=b"[1, 2]").status_code == 400
    assert post(client, None, signature=None, body=b"{not json").status_code == 401


def test_body_over_1_mib_is_413(client, app):
    big = b'{"x": "' + b"a" * app.state.limits["whatsapp"].max_body_bytes + b'"}'
    assert post(client, None, body=big).status_code == 413
    assert app.state.inbox.accepted == []


def test_malformed_entries_still_200(client, app):
    payload = copy.deepcopy(P.TEXT)
    payload["entry"].insert(0, {"changes": "nope"})
    resp = post(client, payload)
    assert resp.status_code == 200 and resp.json()["skipped"] == 1
    assert len(app.state.inbox.accepted) == 1


def test_inbox_failure_is_500_so_meta_redelivers(client, app):
    app.state.inbox = FakeInbox(fail=True)
    assert post(client, P.TEXT).status_code == 500


def test_settings_from_the_environment():
    env = {"WHATSAPP_APP_SECRET": "s", "WHATSAPP_VERIFY_TOKEN": "v", "WHATSAPP_ACCESS_TOKEN": "a",
           "WHATSAPP_PHONE_NUMBER_ID": "123",
           "WHATSAPP_TEMPLATES": json.dumps({"reply:en": ["reply_reopen", "en_US"],
                                             "reply:de": {"name": "reply_reopen", "language": "de"}})}
    s = settings_from(env).whatsapp
    assert (s.app_secret, s.verify_token, s.access_token, s.phone_number_id) == ("s", "v", "a", "123")
    assert s.configured and not settings_from({}).whatsapp.configured
    assert s.graph_url == "https://graph.facebook.com/v21.0"
    assert s.templates == {("reply", "en"): ("reply_reopen", "en_US"), ("reply", "de"): ("reply_reopen", "de")}
    assert (s.recipient_interval_s, s.recipient_burst) == (6.0, 3)
    assert settings_from({**env, "WHATSAPP_GRAPH_URL": "http://127.0.0.1:1/"}).whatsapp.graph_url == "http://127.0.0.1:1"
    assert settings_from({**env, "WHATSAPP_GRAPH_URL": ""}).whatsapp.graph_url == "https://graph.facebook.com/v21.0"
    listed = parse_templates(json.dumps([{"purpose": "order_update", "language": "fr", "name": "maj", "code": "fr"}]))
    assert listed == {("order_update", "fr"): ("maj", "fr")}
    with pytest.raises(ValueError):
        parse_templates('{"reply": "x"}')


@pytest.mark.parametrize("env, variable", [
    ({"WHATSAPP_TEMPLATES": '{"reply": "x"}'}, "WHATSAPP_TEMPLATES"),
    ({"WHATSAPP_TEMPLATES": "{not json"}, "WHATSAPP_TEMPLATES"),
    ({"WHATSAPP_GRAPH_URL": "graph.facebook.com"}, "WHATSAPP_GRAPH_URL"),
    ({"WHATSAPP_RECIPIENT_BURST": "0"}, "WHATSAPP_RECIPIENT_BURST"),
    ({"WHATSAPP_RECIPIENT_INTERVAL_S": "soon"}, "WHATSAPP_RECIPIENT_INTERVAL_S"),
])
def test_invalid_settings_are_refused_naming_the_variable(env, variable):
    with pytest.raises(SettingsError, match=variable):
        settings_from(env)


def test_router_reads_env_when_no_settings_on_app(monkeypatch):
    from crm import config

    monkeypatch.setenv("WHATSAPP_APP_SECRET", SECRET)
    config.get_settings.cache_clear()
    try:
        app = FastAPI()
        app.include_router(router)
        app.state.inbox, app.state.delivery = FakeInbox(), FakeDelivery()
        app.state.limits = InputLimits(config.get_settings())
        assert post(TestClient(app), P.TEXT).status_code == 200
        assert len(app.state.inbox.accepted) == 1
    finally:
        config.get_settings.cache_clear()
