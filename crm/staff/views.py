"""Staff HTTP API: login/logout, the caller's own account, user and token administration (admins)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from crm.db import unit_of_work, utcnow
from crm.staff import service as staff
from crm.staff.auth import SESSION_COOKIE, Principal, client_address, csrf_token, require, sign_session
from crm.staff.models import ADMIN, AGENT, MARKETER, StaffUser
from crm.config import get_settings

router = APIRouter(tags=["staff"])
ANY_STAFF = (ADMIN, AGENT, MARKETER)


class Login(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class NewUser(BaseModel):
    email: str = Field(max_length=254)
    name: str = Field(max_length=200)
    role: Literal["admin", "agent", "marketer"]
    password: str = Field(min_length=staff.MIN_PASSWORD_CHARS, max_length=1024)
    languages: list[str] = Field(default_factory=list, max_length=20)


class NewToken(BaseModel):
    name: str = Field(max_length=100)
    role: Literal["admin", "agent", "marketer"] | None = None


class Presence(BaseModel):
    presence: Literal["online", "away", "offline"]


def user_view(user: StaffUser) -> dict:
    return {"id": user.id, "email": user.email, "name": user.name, "role": user.role, "languages": user.languages,
            "presence": user.presence, "disabled": user.disabled_at is not None,
            "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None}


def _secure(request: Request) -> bool:
    setting = get_settings().cookie_secure
    return request.url.scheme == "https" if setting is None else setting


@router.post("/api/auth/login", summary="Log in to the console (sets an HttpOnly session cookie)")
async def login(body: Login, request: Request, response: Response):
    client = client_address(request)

    def run():
        with unit_of_work() as session:
            result = staff.login(session, body.email, body.password, client, utcnow())
            return result, (user_view(result.user) if result.user else None)

    result, user = await run_in_threadpool(run)
    if result.throttled:
        raise HTTPException(429, "too many login attempts; try again later",
                            headers={"Retry-After": str(max(1, result.retry_after_s))})
    if user is None:
        raise HTTPException(401, "wrong email or password")
    hours = get_settings().staff_session_hours
    response.set_cookie(SESSION_COOKIE, sign_session(result.session_token), max_age=hours * 3600, httponly=True,
                        samesite="strict", secure=_secure(request), path="/")
    return {"user": user, "csrf_token": csrf_token(result.session_token)}


@router.post("/api/auth/logout", summary="End this console session")
def logout(response: Response, me: Principal = require(*ANY_STAFF)):
    with unit_of_work() as session:
        if me.session_token:
            staff.logout(session, me.session_token)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"logged_out": True}


@router.get("/api/auth/me", summary="The logged-in staff member (and the CSRF token of this session)")
def me_view(me: Principal = require(*ANY_STAFF)):
    with unit_of_work() as session:
        user = session.get(StaffUser, me.user_id)
        return {"user": user_view(user), "via": me.via, "role": me.role,
                "csrf_token": csrf_token(me.session_token) if me.session_token else None}


@router.put("/api/auth/me/presence", summary="Set your presence (online / away / offline)")
def set_presence(body: Presence, me: Principal = require(*ANY_STAFF)):
    with unit_of_work() as session:
        user = staff.set_presence(session, me.actor, session.get(StaffUser, me.user_id), body.presence)
        return user_view(user)


@router.get("/api/staff/users", summary="Staff users (admins)")
def list_users(me: Principal = require(ADMIN)):
    with unit_of_work() as session:
        return [user_view(u) for u in staff.list_users(session)]


@router.post("/api/staff/users", status_code=201, summary="Add a staff user (admins)")
def add_user(body: NewUser, me: Principal = require(ADMIN)):
    with unit_of_work() as session:
        try:
            return user_view(staff.add_user(session, me.actor, body.email, body.name, body.role, body.password,
                                            body.languages))
        except staff.StaffError as exc:
            raise HTTPException(400, str(exc)) from None


def _user_or_404(session, user_id: int) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None:
        raise HTTPException(404, "no such staff user")
    return user


@router.post("/api/staff/users/{user_id}/disable", summary="Disable a staff user: sessions and tokens end (admins)")
def disable_user(user_id: int, me: Principal = require(ADMIN)):
    with unit_of_work() as session:
        return user_view(staff.disable_user(session, me.actor, _user_or_404(session, user_id), utcnow()))


def token_view(token) -> dict:
    return {"id": token.id, "name": token.name, "role": token.role, "prefix": token.prefix, "user_id": token.user_id,
            "created_at": token.created_at.isoformat(), "revoked": token.revoked_at is not None,
            "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None}


@router.get("/api/staff/tokens", summary="API tokens (admins; never the secrets)")
def list_tokens(me: Principal = require(ADMIN)):
    with unit_of_work() as session:
        return [token_view(t) for t in staff.list_tokens(session)]


@router.post("/api/staff/users/{user_id}/tokens", status_code=201,
             summary="Create an API token for a user; the token is shown in this answer only (admins)")
def create_token(user_id: int, body: NewToken, me: Principal = require(ADMIN)):
    with unit_of_work() as session:
        try:
            row, secret = staff.create_token(session, me.actor, _user_or_404(session, user_id), body.name, body.role)
        except staff.StaffError as exc:
            raise HTTPException(400, str(exc)) from None
        return {**token_view(row), "token": secret}


@router.delete("/api/staff/tokens/{token_id}", summary="Revoke an API token (admins)")
def revoke_token(token_id: int, me: Principal = require(ADMIN)):
    with unit_of_work() as session:
        try:
            return token_view(staff.revoke_token(session, me.actor, token_id, utcnow()))
        except staff.StaffError as exc:
            raise HTTPException(404, str(exc)) from None


# ------------------------------------------------------------------------------------------ the sign-in page

STATIC = Path(__file__).parent / "static"
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'self'; object-src 'none'; frame-ancestors 'none'")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@router.get("/login", summary="Staff sign-in page", include_in_schema=False)
async def login_page() -> FileResponse:
    return FileResponse(STATIC / "login.html", media_type="text/html; charset=utf-8", headers={
        "Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache",
        "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"})


@router.get("/staff/static/{name}", include_in_schema=False)
async def staff_asset(name: str) -> FileResponse:
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in _TYPES or not path.is_file():
        raise HTTPException(404, "not found")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers={"X-Content-Type-Options": "nosniff",
                                                                        "Cache-Control": "no-cache"})
