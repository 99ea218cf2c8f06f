"""rasa-sdk 3.21 (Python 3.11) speaks Rasa 3.6's action-server protocol: proven against the real server."""
from __future__ import annotations

from importlib.metadata import version

import httpx
import pytest
import yaml

from bot.stack import ROOT
from tests.e2e.conftest import rasa_api

pytestmark = pytest.mark.e2e


def test_action_server_serves_exactly_the_domains_custom_actions(live_stack):
    assert version("rasa-sdk") == "3.21.1"
    actions = f"http://127.0.0.1:{live_stack.actions_port}/actions"
    assert httpx.get(actions).status_code == 401  # only Rasa, with the shared secret, is answered
    served = {a["name"] for a in httpx.get(actions, headers={
        "X-Crossdesk-Action-Secret": live_stack.secrets["CROSSDESK_ACTION_SECRET"]}).json()}
    domain = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text())
    assert served == set(domain["actions"])


def test_rasa_records_events_returned_by_the_action_server(chat, live_stack):
    c = chat()
    replies = c.say("hello")
    assert replies[0]["buttons"][0]["payload"] == "/track_order"  # buttons survive the round trip
    c.text("where is my order CD-100002")
    tracker = httpx.get(rasa_api(live_stack, f"/conversations/rest:{c.sender}/tracker")).json()
    names = [e.get("name") for e in tracker["events"] if e["event"] in ("action", "slot", "active_loop")]
    assert "action_smalltalk" in names and "action_start_flow" in names
    assert tracker["slots"]["flow"] == "track"  # SlotSet from rasa-sdk applied by Rasa
    assert tracker["slots"]["order_number"] == "CD-100002"  # set by the form validation action
    assert tracker["slots"]["requested_slot"] == "contact"
    assert tracker["active_loop"]["name"] == "verify_form"
