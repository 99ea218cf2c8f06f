"""Staff accounts end to end through the real app: login, session cookie, CSRF, throttling, tokens, disabling,
and the audit trail."""
from __future__ import annotations

from sqlalchemy import select

from tests.staff.conftest import PASSWORD, bearer


def login(client, email, password=PASSWORD):
    return client.post("/api/auth/login", json={"email": email, "password": password})


def test_login_sets_a_hardened_cookie_and_state_changes_need_the_csrf_token(staff_app):
    client = staff_app.client
    resp = login(client, "Agent@Shop.test")
    assert resp.status_code == 200, resp.text
    cookie = resp.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    csrf = resp.json()["csrf_token"]
    assert resp.json()["user"]["role"] == "agent"
    assert client.get("/api/auth/me").json()["user"]["email"] == "agent@shop.test"
    # a state-changing request with the cookie alone (what a foreign page could make a browser send) fails
    assert client.put("/api/auth/me/presence", json={"presence": "online"}).status_code == 403
    assert client.put("/api/auth/me/presence", json={"presence": "online"},
                      headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    ok = client.put("/api/auth/me/presence", json={"presence": "online"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json()["presence"] == "online"
    # the agent's session is not an admin's
    assert client.get("/api/staff/users").status_code == 403
    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get("/api/auth/me").status_code == 401


def test_the_raw_session_id_is_not_stored(staff_app, app_db):
    from crm.db import unit_of_work
    from crm.staff.models import StaffSession

    resp = login(staff_app.client, "admin@shop.test")
    signed = resp.cookies.get("cd_session") or staff_app.client.cookies.get("cd_session")
    with unit_of_work() as session:
        stored = session.scalars(select(StaffSession.token_hash)).all()
    assert stored and all(len(h) == 64 for h in stored)
    assert not any(h in signed for h in stored)


def test_wrong_passwords_are_throttled_per_email_whatever_the_sender(staff_app):
    client = staff_app.client
    for _ in range(5):
        assert login(client, "admin@shop.test", "wrong password!").status_code == 401
    throttled = login(client, "admin@shop.test")  # even the right password now waits
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert login(client, "agent@shop.test").status_code == 200  # other accounts are not affected
    # an unknown email answers exactly like a wrong password
    unknown = login(client, "nobody@shop.test", "whatever whatever")
    assert unknown.status_code == 401 and unknown.json() == login(client, "agent@shop.test", "nope nope").json()


def test_disabling_a_user_ends_sessions_and_tokens_at_once(staff_app):
    client = staff_app.client
    login(client, "agent@shop.test")
    admin = bearer(staff_app.tokens["admin"])
    users = {u["email"]: u["id"] for u in client.get("/api/staff/users", headers=admin).json()}
    assert client.post(f"/api/staff/users/{users['agent@shop.test']}/disable", headers=admin).status_code == 200
    assert client.get("/api/auth/me").status_code == 401  # the cookie session is gone
    assert client.get("/api/handoffs", headers=bearer(staff_app.tokens["agent"])).status_code == 401
    assert login(client, "agent@shop.test").status_code == 401


def test_tokens_are_shown_once_scoped_and_revocable(staff_app):
    client = staff_app.client
    admin = bearer(staff_app.tokens["admin"])
    users = {u["email"]: u["id"] for u in client.get("/api/staff/users", headers=admin).json()}
    made = client.post(f"/api/staff/users/{users['admin@shop.test']}/tokens", headers=admin,
                       json={"name": "helpdesk sync", "role": "agent"}).json()
    token = made["token"]
    assert token.startswith("cdt_") and made["role"] == "agent"
    assert all("token" not in t for t in client.get("/api/staff/tokens", headers=admin).json())
    assert client.get("/api/handoffs", headers=bearer(token)).status_code == 200
    assert client.get("/api/staff/users", headers=bearer(token)).status_code == 403  # scoped to agent
    # an agent cannot hold an admin token
    refused = client.post(f"/api/staff/users/{users['agent@shop.test']}/tokens", headers=admin,
                          json={"name": "x", "role": "admin"})
    assert refused.status_code == 400
    assert client.delete(f"/api/staff/tokens/{made['id']}", headers=admin).status_code == 200
    assert client.get("/api/handoffs", headers=bearer(token)).status_code == 401


def test_staff_reads_and_actions_are_audited_and_only_admins_read_the_trail(staff_app, app_db):
    from datetime import datetime, timezone

    from crm.conversations import service as conversations
    from crm.db import unit_of_work
    from crm.handoff import service as handoff

    now = datetime.now(timezone.utc)
    with unit_of_work() as session:
        conv = conversations.get_or_create(session, "rest", "shopper-1", now)
        conversations.record(session, conv, "in", "shopper", "I want a person",
                             {"metadata": {}, "client": "ip:203.0.113.7"}, now)
        ticket = handoff.request_handoff(session, conv, "asked", "I want a person", now)
        ticket_id, conv_id = ticket.request.id, conv.id
    client = staff_app.client
    agent = bearer(staff_app.tokens["agent"])
    transcript = client.get("/api/conversations/rest:shopper-1/messages", headers=agent)
    assert transcript.status_code == 200
    assert transcript.json()[0]["payload"] == {"metadata": {}}  # the shopper's IP stays with the limits
    assert client.post(f"/api/handoffs/{ticket_id}/close", headers=agent).status_code == 200
    assert client.get("/api/audit", headers=agent).status_code == 403
    trail = client.get(f"/api/audit?conversation_id={conv_id}", headers=bearer(staff_app.tokens["admin"])).json()
    assert [(e["action"], e["actor"], e["via"]) for e in trail] == [
        ("handoff.close", "agent@shop.test", "token"), ("conversation.transcript", "agent@shop.test", "token")]
