"""Who is calling: the FastAPI side of the trust boundary for staff.

Two ways in, nothing else:
- a console session: cookie ``cd_session`` = the session id signed with CROSSDESK_SECRET_KEY (itsdangerous),
  ``HttpOnly``, ``SameSite=Strict``, ``Secure`` on HTTPS. Every state-changing request made with it must also
  send ``X-CSRF-Token`` (returned by login and by ``GET /api/auth/me``: an HMAC of the session id), which a
  foreign page cannot read or forge;
- an API token: ``Authorization: Bearer cdt_…``, scoped to one role.

``require(role, …)`` is the dependency every staff route declares: 401 without valid credentials, 403 when
the role is not allowed (admins are allowed everywhere).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from ipaddress import ip_address

from fastapi import Depends, HTTPException, Request
from starlette.requests import HTTPConnection
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from crm.audit.service import Actor
from crm.config import get_settings
from crm.db import unit_of_work, utcnow
from crm.staff import service as staff
from crm.staff.models import ADMIN, AGENT, MARKETER

SESSION_COOKIE = "cd_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    user_id: int
    email: str
    name: str
    role: str
    via: str  # session | token
    client: str
    session_token: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id, self.email, self.via, self.role, self.client)


def client_address(request: HTTPConnection) -> str:
    """The caller's IP. X-Forwarded-For counts only when the direct peer is a configured trusted proxy,
    and then its right-most address not itself a trusted proxy — what a client cannot choose."""
    peer = request.client.host if request.client else "unknown"
    trusted = get_settings().trusted_proxy_set
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in (request.headers.get("x-forwarded-for") or "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop in trusted:
            continue
        try:
            return str(ip_address(hop))
        except ValueError:
            break
    return peer


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret("secret_key"), salt="crossdesk.staff-session")


def sign_session(raw: str) -> str:
    return _serializer().dumps(raw)


def csrf_token(raw_session: str) -> str:
    key = get_settings().secret("secret_key").encode()
    return hmac.new(key, f"csrf:{raw_session}".encode(), hashlib.sha256).hexdigest()


def _from_cookie(cookie: str) -> str | None:
    try:
        raw = _serializer().loads(cookie, max_age=get_settings().staff_session_hours * 3600)
    except BadSignature:
        return None
    return raw if isinstance(raw, str) else None


def _lookup(authorization: str | None, cookie: str | None, client: str) -> Principal | None:
    now = utcnow()
    scheme, _, credential = (authorization or "").partition(" ")
    bearer = credential.strip() if scheme.lower() == "bearer" else ""
    raw = _from_cookie(cookie) if cookie and not bearer else None
    if not bearer and raw is None:
        return None
    with unit_of_work() as session:
        if bearer:
            found = staff.token_user(session, bearer, now)
            if found is None:
                return None
            user, token = found
            return Principal(user.id, user.email, user.name, token.role, "token", client)
        found = staff.session_user(session, raw, now)
        if found is None:
            return None
        user, _ = found
        return Principal(user.id, user.email, user.name, user.role, "session", client, raw)


async def authenticate(request: Request) -> Principal | None:
    return await run_in_threadpool(_lookup, request.headers.get("authorization"),
                                   request.cookies.get(SESSION_COOKIE), client_address(request))


def require(*roles: str):
    """Dependency: the authenticated staff member, if their role is among `roles` (admins always are)."""
    wanted = tuple(roles) or (ADMIN,)

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if principal is None:
            raise HTTPException(401, "staff credentials required: log in, or send an API token as "
                                     "'Authorization: Bearer …'", headers={"WWW-Authenticate": "Bearer"})
        if principal.via == "session" and request.method not in SAFE_METHODS:
            given = request.headers.get(CSRF_HEADER) or ""
            if not hmac.compare_digest(given.encode(), csrf_token(principal.session_token or "").encode()):
                raise HTTPException(403, "missing or wrong X-CSRF-Token header for this session")
        if not staff.role_allows(principal.role, wanted):
            raise HTTPException(403, f"this needs the role {' or '.join(wanted)}; you are {principal.role}")
        return principal

    dependency.roles = wanted  # read by the route-table test (tests/test_access.py)
    return Depends(dependency)


ADMIN_ONLY = (ADMIN,)
AGENTS = (AGENT,)
MARKETERS = (MARKETER,)
