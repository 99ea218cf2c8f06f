"""The trust boundary of the running stack: Rasa and the action server answer only the app, listen on loopback
only, and no staff route answers without credentials."""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


def test_rasa_and_actions_listen_on_loopback_only(live_stack):
    loopback = {"0100007F", "00000000000000000000000001000000"}
    for port in (live_stack.rasa_port, live_stack.actions_port):
        addresses = _listening_addresses(port)
        assert addresses and addresses <= loopback, (port, addresses)


def test_rasa_answers_only_the_app(live_stack):
    body = {"sender": "whatsapp:+4915112345678", "message": "where is my order CD-100001"}
    assert httpx.post(f"{live_stack.rasa_url}/webhooks/crossdesk/webhook", json=body).status_code == 401
    assert httpx.post(f"{live_stack.rasa_url}/webhooks/crossdesk/webhook", json=body,
                      headers={"X-Crossdesk-Token": "guess-guess-guess"}).status_code == 401
    assert httpx.post(f"{live_stack.rasa_url}/webhooks/rest/webhook", json=body).status_code == 404  # not served
    assert httpx.get(f"{live_stack.rasa_url}/conversations/rest:x/tracker").status_code == 401  # HTTP API: token


def test_the_action_server_answers_only_rasa(live_stack):
    call = {"next_action": "action_run_flow", "sender_id": "whatsapp:+4915112345678",
            "tracker": {"sender_id": "whatsapp:+4915112345678", "slots": {"order_number": "CD-100001"},
                        "events": [], "latest_message": {}}, "domain": {}}
    resp = httpx.post(f"http://127.0.0.1:{live_stack.actions_port}/webhook", json=call)
    assert resp.status_code == 401


def test_staff_api_needs_credentials_on_the_live_app(live_stack):
    for path in ("/api/handoffs", "/api/conversations/whatsapp:+4915112345678/messages", "/api/audit",
                 "/api/staff/users"):
        assert httpx.get(f"{live_stack.app_url}{path}").status_code == 401, path
