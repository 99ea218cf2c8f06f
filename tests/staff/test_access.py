"""The trust boundary of the HTTP app, walked route by route.

Every route is either on the public allow-list below (each with the reason it must be public) or declares a
staff role with crm.staff.auth.require; the test fails for a route that is neither. Each staff route is then
called for real: 401 without credentials (and with a bad token, and with a forged cookie), 403 with a role it
does not allow, and neither 401 nor 403 with one it does.
"""
from __future__ import annotations

import re

import pytest
from fastapi.routing import APIWebSocketRoute, iter_route_contexts

from tests.staff.conftest import bearer

PUBLIC = {
    ("POST", "/webhooks/rest/webhook"): "shoppers (REST channel); per-message signed identities only",
    ("GET", "/webhooks/whatsapp"): "Meta's subscription handshake (checks the verify token)",
    ("POST", "/webhooks/whatsapp"): "Meta's webhook (X-Hub-Signature-256, fails closed)",
    ("POST", "/webhooks/email/postmark"): "inbound email webhook (Basic auth, fails closed)",
    ("GET", "/chat"): "the shopper's web chat page",
    ("GET", "/widget.js"): "the embed script shops put on their pages",
    ("GET", "/web/static/{name}"): "web chat assets",
    ("GET", "/api/web/{session}/history"): "the shopper's own web session (128-bit bearer session id)",
    ("WEBSOCKET", "/ws/chat"): "the shopper's own web session",
    ("GET", "/healthz"): "liveness probe",
    ("GET", "/readyz"): "readiness probe (no data)",
    ("GET", "/login"): "the staff sign-in page (no data)",
    ("GET", "/staff/static/{name}"): "sign-in page assets",
    ("POST", "/api/auth/login"): "signing in (throttled per email and per client)",
    ("GET", "/openapi.json"): "API docs",
    ("GET", "/docs"): "API docs",
    ("GET", "/docs/oauth2-redirect"): "API docs",
    ("GET", "/redoc"): "API docs",
}
ROLES = ("admin", "agent", "marketer")


def _routes():
    """(method, path, route) for every route of the app, included routers too (HEAD rides on GET)."""
    from channels.app import app

    for context in iter_route_contexts(app.routes):
        route = context.route
        if isinstance(route, APIWebSocketRoute):
            yield "WEBSOCKET", context.path, route
            continue
        for method in sorted(set(getattr(route, "methods", None) or {"GET"}) - {"HEAD"}):
            yield method, context.path, route


def _roles(route) -> tuple[str, ...] | None:
    dependant = getattr(route, "dependant", None)
    stack = list(dependant.dependencies) if dependant else []
    while stack:
        dep = stack.pop()
        if hasattr(dep.call, "roles"):
            return dep.call.roles
        stack.extend(dep.dependencies)
    return None


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "999999" if m.group(1).endswith("id") else "rest:nobody", path)


def test_every_route_is_public_for_a_reason_or_needs_a_staff_role():
    unguarded = [(m, p) for m, p, r in _routes() if (m, p) not in PUBLIC and _roles(r) is None]
    assert unguarded == [], f"routes with no staff role and not on the public allow-list: {unguarded}"
    stale = set(PUBLIC) - {(m, p) for m, p, _ in _routes()}
    assert stale == set(), f"allow-list entries for routes that do not exist: {stale}"


def test_staff_routes_answer_401_403_by_credentials_and_role(staff_app):
    client = staff_app.client
    checked = 0
    for method, path, route in _routes():
        roles = _roles(route)
        if roles is None or method == "WEBSOCKET":
            continue
        url = _url(path)
        call = lambda **kw: client.request(method, url, json={} if method in ("POST", "PUT", "PATCH") else None, **kw)
        assert call().status_code == 401, (method, path)
        assert call(headers=bearer("cdt_not-a-real-token")).status_code == 401, (method, path)
        client.cookies.set("cd_session", "forged.session.value")
        assert call().status_code == 401, (method, path)
        client.cookies.clear()
        for role in ROLES:
            status = call(headers=bearer(staff_app.tokens[role])).status_code
            allowed = role == "admin" or role in roles
            if allowed:
                assert status not in (401, 403), (method, path, role, status)
            else:
                assert status == 403, (method, path, role, status)
        checked += 1
    assert checked >= 10  # the staff API exists and was walked
