from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import datetime, timezone

import pytest

from channels.whatsapp.wire import needs_text_only_reply, parse_webhook, verify_handshake, verify_signature
from tests.whatsapp import payloads as P

NOW = datetime(2026, 3, 5, 12, 0, tzinfo=timezone.utc)
SECRET = "app-secret-123"


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- signature and handshake


def test_signature_valid_tampered_wrong_secret_missing():
    body = json.dumps(P.TEXT).encode()
    assert verify_signature(body, sign(body), SECRET) is True
    assert verify_signature(body, sign(body).upper().replace("SHA256=", "sha256="), SECRET) is True  # hex case
    assert verify_signature(body + b" ", sign(body), SECRET) is False
    assert verify_signature(body.replace(b"CD-104233", b"CD-104234"), sign(body), SECRET) is False
    assert verify_signature(body, sign(body, "other-secret"), SECRET) is False
    assert verify_signature(body, None, SECRET) is False
    assert verify_signature(body, "", SECRET) is False
    assert verify_signature(body, sign(body).replace("sha256=", "sha1="), SECRET) is False
    assert verify_signature(body, sign(body), "") is False  # unconfigured secret never verifies


def test_handshake():
    ok = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"}
    assert verify_handshake(ok, "tok") == "1158201444"
    assert verify_handshake({**ok, "hub.verify_token": "nope"}, "tok") is None
    assert verify_handshake({**ok, "hub.mode": "unsubscribe"}, "tok") is None
    assert verify_handshake({k: v for k, v in ok.items() if k != "hub.challenge"}, "tok") is None
    assert verify_handshake(ok, "") is None


# ---------------------------------------------------------------- parsing Meta's examples


def only_message(payload):
    batch = parse_webhook(payload, NOW)
    assert batch.skipped == 0, batch.skipped_reasons
    assert len(batch.messages) == 1 and not batch.statuses
    return batch.messages[0]


def test_text_message():
    msg = only_message(P.TEXT)
    assert msg.channel == "whatsapp"
    assert msg.sender_id == "+4915123456789"
    assert msg.text == "Where is my order CD-104233?"
    assert msg.external_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgAtext"
    assert msg.received_at == NOW
    assert msg.metadata["phone_number_id"] == P.PHONE_NUMBER_ID
    assert msg.metadata["profile_name"] == "Sheena Nelson"
    assert msg.metadata["type"] == "text"
    assert msg.metadata["sent_at"] == "2025-06-08T20:59:43+00:00"
    assert not needs_text_only_reply(msg)
    json.dumps(msg.metadata)  # stored as JSON by the inbox


def test_button_reply_gives_title_as_text_and_id_as_payload():
    msg = only_message(P.BUTTON_REPLY)
    assert msg.text == "Yes, cancel it"
    assert msg.metadata["payload"] == "/affirm"
    assert msg.metadata["interactive_type"] == "button_reply"
    assert msg.metadata["context_id"] == "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBIyNkVGNDBBMjQ2QjM5RkU4NTMA"


def test_list_reply():
    msg = only_message(P.LIST_REPLY)
    assert (msg.text, msg.metadata["payload"]) == ("Track my order", "/track_order")
    assert msg.metadata["description"] == "Where is my parcel?"


def test_location():
    msg = only_message(P.LOCATION)
    assert msg.text == ""
    assert msg.metadata["latitude"] == pytest.approx(37.483307)
    assert msg.metadata["longitude"] == pytest.approx(-122.148981)
    assert msg.metadata["location_name"] == "Philz Coffee"
    assert msg.metadata["location_address"].startswith("1 Hacker Way")
    assert not needs_text_only_reply(msg)


@pytest.mark.parametrize("payload, media_id, mime", [(P.IMAGE, "1003383421387256", "image/jpeg"),
                                                     (P.STICKER, "1185210989447318", "image/webp")])
def test_media_is_unsupported(payload, media_id, mime):
    msg = only_message(payload)
    assert msg.text == ""
    assert msg.metadata["unsupported_media"] is True
    assert msg.metadata["media_id"] == media_id
    assert msg.metadata["mime_type"] == mime
    assert needs_text_only_reply(msg) is True


def test_image_caption_kept_in_metadata_only():
    msg = only_message(P.IMAGE)
    assert msg.metadata["caption"] == "this arrived broken"


def test_reaction_is_metadata_only():
    msg = only_message(P.REACTION)
    assert msg.text == ""
    assert msg.metadata["reaction_emoji"] == "\U0001F44D"
    assert msg.metadata["reaction_to"] == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA"
    assert not needs_text_only_reply(msg)


def test_statuses_delivered_and_failed():
    batch = parse_webhook(P.STATUS_DELIVERED, NOW)
    assert not batch.messages and batch.skipped == 0
    [st] = batch.statuses
    assert st.wamid == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA"
    assert (st.status, st.recipient, st.errors) == ("delivered", "+4915123456789", [])
    assert st.timestamp == datetime.fromtimestamp(1750263773, tz=timezone.utc)
    [failed] = parse_webhook(P.STATUS_FAILED, NOW).statuses
    assert failed.status == "failed"
    assert failed.errors[0]["code"] == 131047
    assert failed.errors[0]["title"] == "Re-engagement message"


def test_multiple_entries_and_changes():
    payload = copy.deepcopy(P.TEXT)
    payload["entry"][0]["changes"].append(P.STATUS_DELIVERED["entry"][0]["changes"][0])
    payload["entry"].append(P.BUTTON_REPLY["entry"][0])
    payload["entry"].append({"id": P.WABA_ID, "changes": [{"field": "account_update", "value": {"x": 1}}]})
    batch = parse_webhook(payload, NOW)
    assert [m.text for m in batch.messages] == ["Where is my order CD-104233?", "Yes, cancel it"]
    assert [s.status for s in batch.statuses] == ["delivered"]
    assert batch.skipped == 0 and batch.ignored == 1


def test_malformed_parts_are_skipped_and_counted():
    good = P.TEXT["entry"][0]
    bad_message = copy.deepcopy(P.TEXT["entry"][0])
    bad_message["changes"][0]["value"]["messages"][0]["from"] = 4915123456789  # int, not str
    no_id = copy.deepcopy(P.IMAGE["entry"][0])
    del no_id["changes"][0]["value"]["messages"][0]["id"]
    wrong_interactive = copy.deepcopy(P.BUTTON_REPLY["entry"][0])
    wrong_interactive["changes"][0]["value"]["messages"][0]["interactive"] = "yes"
    bad_status = copy.deepcopy(P.STATUS_DELIVERED["entry"][0])
    bad_status["changes"][0]["value"]["statuses"].append({"status": "read"})  # no id
    payload = {"object": "whatsapp_business_account",
               "entry": [good, "not an entry", {"id": "x"}, {"changes": ["nope", {"field": "messages", "value": []}]},
                         bad_message, no_id, wrong_interactive, bad_status]}
    batch = parse_webhook(payload, NOW)
    assert [m.text for m in batch.messages] == ["Where is my order CD-104233?"]
    assert len(batch.statuses) == 1  # the well-formed one next to the broken one
    assert batch.skipped == 8
    for junk in (None, [], "x", {"entry": "x"}, {"entry": [None]}):
        assert parse_webhook(junk, NOW).messages == []  # never raises


def test_unknown_status_value_is_ignored():
    payload = copy.deepcopy(P.STATUS_DELIVERED)
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = "deleted"
    batch = parse_webhook(payload, NOW)
    assert batch.statuses == [] and batch.ignored == 1 and batch.skipped == 0
