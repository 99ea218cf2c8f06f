"""Staff accounts: users and roles, password login with throttling, console sessions, API tokens.

Passwords are hashed with argon2id (argon2-cffi, its RFC 9106 low-memory profile); session ids and API
tokens are random 256-bit values of which only a SHA-256 is stored. Every change is audited by the caller's
unit of work (crm.audit).
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from crm.audit import service as audit
from crm.audit.service import Actor
from crm.config import Settings, get_settings
from crm.contacts import normalize_email
from crm.limits import service as limits
from crm.limits.service import Limit
from crm.staff.models import ADMIN, OFFLINE, PRESENCES, ROLES, ApiToken, StaffSession, StaffUser

_hasher = PasswordHasher()
# Verifying against this when the email is unknown costs the same time as a real check (no user enumeration).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_CHARS = 12
TOKEN_PREFIX = "cdt_"


class StaffError(ValueError):
    """A request about staff accounts that cannot be done (said to the caller as it is)."""


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def role_allows(role: str, wanted: tuple[str, ...]) -> bool:
    """Admins may do everything; everyone else only what their own role is listed for."""
    return role == ADMIN or role in wanted


# ---------------------------------------------------------------------------------------------------- users

def add_user(session: Session, actor: Actor, email: str, name: str, role: str, password: str,
             languages: list[str] | tuple[str, ...] = ()) -> StaffUser:
    address = normalize_email(email or "")
    if not address:
        raise StaffError(f"not a valid email address: {email!r}")
    if role not in ROLES:
        raise StaffError(f"role must be one of {', '.join(ROLES)}")
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise StaffError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if session.scalar(select(StaffUser.id).where(StaffUser.email == address)) is not None:
        raise StaffError(f"a staff user with the email {address} exists already")
    codes = sorted({code.strip().lower()[:8] for code in languages if code and code.strip()})
    user = StaffUser(email=address, name=(name or address).strip()[:200], role=role, languages=codes,
                     presence=OFFLINE, password_hash=_hasher.hash(password))
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.add", target=f"staff:{user.id}", detail={"email": address, "role": role})
    return user


def find_user(session: Session, email_or_id: str | int) -> StaffUser | None:
    if isinstance(email_or_id, int) or str(email_or_id).isdigit():
        return session.get(StaffUser, int(email_or_id))
    return session.scalar(select(StaffUser).where(StaffUser.email == (normalize_email(str(email_or_id)) or "")))


def list_users(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.id)))


def disable_user(session: Session, actor: Actor, user: StaffUser, now: datetime) -> StaffUser:
    """Disabled users cannot log in; their sessions end and their tokens stop working at once."""
    if user.disabled_at is None:
        user.disabled_at = now
    user.presence = OFFLINE
    session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    for token in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))):
        token.revoked_at = now
    audit.record(session, actor, "user.disable", target=f"staff:{user.id}", detail={"email": user.email})
    return user


def set_presence(session: Session, actor: Actor, user: StaffUser, presence: str) -> StaffUser:
    if presence not in PRESENCES:
        raise StaffError(f"presence must be one of {', '.join(PRESENCES)}")
    user.presence = presence
    audit.record(session, actor, "user.presence", target=f"staff:{user.id}", detail={"presence": presence})
    return user


# ---------------------------------------------------------------------------------------------------- login

def _login_limits(settings: Settings) -> tuple[Limit, Limit]:
    window = settings.login_window_minutes * 60
    return (Limit("login:email", settings.login_max_attempts, window, 60, 30 * 60),
            Limit("login:client", settings.login_max_attempts * 4, window, 60, 24 * 3600))


@dataclass(frozen=True)
class LoginResult:
    user: StaffUser | None
    session_token: str | None = None  # the raw id for the cookie: shown once, stored hashed
    throttled: bool = False
    retry_after_s: int = 0


def login(session: Session, email: str, password: str, client: str, now: datetime,
          settings: Settings | None = None) -> LoginResult:
    """Check a password and open a console session. Throttled per email and per client; a wrong email and a
    wrong password look the same and cost the same."""
    settings = settings or get_settings()
    address = normalize_email(email or "") or (email or "").strip().lower()[:254]
    by_email, by_client = _login_limits(settings)
    subjects = [(by_email, limits.hashed(address)), (by_client, limits.hashed(client or "unknown"))]
    check = limits.attempt(session, subjects, now)
    if not check.allowed:
        return LoginResult(None, throttled=True, retry_after_s=check.retry_after_s)
    user = session.scalar(select(StaffUser).where(StaffUser.email == address))
    try:
        _hasher.verify(user.password_hash if user is not None else _DUMMY_HASH, password or "")
        ok = user is not None and user.active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        audit.record(session, Actor(user.id if user else None, address or "?", "session", client=client),
                     "login.failed", at=now)
        return LoginResult(None)
    limits.refund(session, subjects, now)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    raw = secrets.token_urlsafe(32)
    session.add(StaffSession(token_hash=_sha256(raw), user_id=user.id, created_at=now, client=(client or "")[:64],
                             expires_at=now + timedelta(hours=settings.staff_session_hours)))
    user.last_login_at = now
    audit.record(session, Actor(user.id, user.email, "session", user.role, client), "login", at=now)
    return LoginResult(user, raw)


def session_user(session: Session, raw_token: str, now: datetime) -> tuple[StaffUser, StaffSession] | None:
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == _sha256(raw_token)))
    if row is None or row.expires_at <= now or not row.user.active:
        return None
    return row.user, row


def logout(session: Session, raw_token: str) -> None:
    session.execute(delete(StaffSession).where(StaffSession.token_hash == _sha256(raw_token)))


# ---------------------------------------------------------------------------------------------------- tokens

def create_token(session: Session, actor: Actor, user: StaffUser, name: str, role: str | None = None,
                 now: datetime | None = None) -> tuple[ApiToken, str]:
    """A new API token for `user`, scoped to `role` (the user's own, or a lesser one for an admin). Returns
    the row and the token itself — the only time it is ever shown."""
    role = role or user.role
    if role not in ROLES:
        raise StaffError(f"role must be one of {', '.join(ROLES)}")
    if not role_allows(user.role, (role,)):
        raise StaffError(f"a {user.role} cannot hold a {role} token")
    if not user.active:
        raise StaffError("the user is disabled")
    secret = secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=(name or "token").strip()[:100], role=role, prefix=secret[:8],
                   token_hash=_sha256(secret), **({"created_at": now} if now else {}))
    session.add(row)
    session.flush()
    audit.record(session, actor, "token.create", target=f"token:{row.id}",
                 detail={"user": user.email, "role": role, "name": row.name})
    return row, f"{TOKEN_PREFIX}{secret}"


def token_user(session: Session, raw: str, now: datetime) -> tuple[StaffUser, ApiToken] | None:
    if not raw.startswith(TOKEN_PREFIX):
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _sha256(raw[len(TOKEN_PREFIX):])))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now  # at most one write a minute per token
    return row.user, row


def revoke_token(session: Session, actor: Actor, token_id: int, now: datetime) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise StaffError(f"no API token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = now
    audit.record(session, actor, "token.revoke", target=f"token:{row.id}", detail={"user": row.user.email})
    return row


def list_tokens(session: Session, user: StaffUser | None = None) -> list[ApiToken]:
    stmt = select(ApiToken).order_by(ApiToken.id)
    if user is not None:
        stmt = stmt.where(ApiToken.user_id == user.id)
    return list(session.scalars(stmt))


def has_users(session: Session) -> bool:
    return session.scalar(select(StaffUser.id).limit(1)) is not None
