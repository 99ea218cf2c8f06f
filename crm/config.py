"""Runtime settings: one validated object (pydantic-settings), read from the environment once.

Embedded defaults (SQLite file, no Redis) let a newcomer run everything with nothing installed;
DATABASE_URL / REDIS_URL switch to PostgreSQL and Redis without code changes. Secrets have no defaults:
the app refuses to start without them (``require_secrets``) instead of running with a known value.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """Where runtime files live (SQLite db, logs, generated Rasa endpoints); outside git's view."""
    path = Path(os.environ.get("CROSSDESK_HOME", REPO_ROOT / "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class SettingsError(RuntimeError):
    """A required setting is missing or invalid: said clearly at start, never replaced by a default."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    database_url: str = Field("", validation_alias=_env("DATABASE_URL", "database_url"))
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL", "redis_url"))
    rasa_url: str = Field("http://127.0.0.1:5005", validation_alias=_env("RASA_URL", "rasa_url"))

    # Secrets (no defaults). secret_key signs console sessions and CSRF tokens; rasa_token is what the app
    # shows Rasa's input channel and HTTP API; action_secret is what Rasa shows the action server.
    secret_key: SecretStr | None = Field(None, validation_alias=_env("CROSSDESK_SECRET_KEY", "secret_key"))
    rasa_token: SecretStr | None = Field(None, validation_alias=_env("CROSSDESK_RASA_TOKEN", "rasa_token"))
    action_secret: SecretStr | None = Field(None, validation_alias=_env("CROSSDESK_ACTION_SECRET", "action_secret"))
    identity_secret: SecretStr | None = Field(None, validation_alias=_env("CROSSDESK_IDENTITY_SECRET",
                                                                          "identity_secret"))
    # A shop-signed identity is refused when its expiry lies further ahead than this (no everlasting tokens).
    identity_max_lifetime_s: int = Field(900, ge=10, validation_alias=_env("CROSSDESK_IDENTITY_MAX_LIFETIME",
                                                                         "identity_max_lifetime_s"))

    # Ownership verification
    verification_ttl_minutes: int = 120
    verification_window_minutes: int = 60
    verification_max_attempts_per_conversation: int = 5
    verification_max_attempts_per_order: int = 10
    verification_max_attempts_per_contact: int = 5
    verification_max_attempts_per_client: int = 20
    # Lockouts double on each repeat (base × 2^(strikes-1)); the caps bound what an attacker can do to an
    # owner: a contact or an order is never locked longer than owner_lockout_cap_minutes.
    verification_lockout_base_minutes: int = 5
    verification_owner_lockout_cap_minutes: int = 30
    verification_attacker_lockout_cap_minutes: int = 24 * 60
    verification_global_alarm_failures: int = 200  # failures in one window, all conversations together

    # Staff console
    login_max_attempts: int = 5  # per email and window; per client it is four times that
    login_window_minutes: int = 15
    staff_session_hours: int = 12
    cookie_secure: bool | None = Field(None, validation_alias=_env("CROSSDESK_COOKIE_SECURE", "cookie_secure"))
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated IPs); nobody else's is.
    trusted_proxies: str = Field("", validation_alias=_env("CROSSDESK_TRUSTED_PROXIES", "trusted_proxies"))

    handoff_expected_wait_minutes: int = 15
    max_message_chars: int = 4000
    sender_rate_limit: int = Field(30, ge=1, validation_alias=_env("CROSSDESK_SENDER_RATE_LIMIT", "sender_rate_limit"))
    sender_rate_window_s: int = Field(60, ge=1, validation_alias=_env("CROSSDESK_SENDER_RATE_WINDOW",
                                                                      "sender_rate_window_s"))

    # Email: Basic auth of the inbound webhook (it refuses every call while these are unset), and the
    # authserv-id of the receiving mail server whose Authentication-Results header is believed.
    email_webhook_user: str | None = Field(None, validation_alias=_env("EMAIL_WEBHOOK_USER", "email_webhook_user"))
    email_webhook_password: SecretStr | None = Field(None, validation_alias=_env("EMAIL_WEBHOOK_PASSWORD",
                                                                                 "email_webhook_password"))
    email_authserv_id: str | None = Field(None, validation_alias=_env("EMAIL_AUTHSERV_ID", "email_authserv_id"))

    whatsapp_recipient_interval_s: float = Field(6.0, ge=0, validation_alias=_env("WHATSAPP_RECIPIENT_INTERVAL_S",
                                                                                 "whatsapp_recipient_interval_s"))
    whatsapp_recipient_burst: int = Field(3, ge=1, validation_alias=_env("WHATSAPP_RECIPIENT_BURST",
                                                                        "whatsapp_recipient_burst"))
    inbox_worker: bool = Field(True, validation_alias=_env("CROSSDESK_INBOX_WORKER", "inbox_worker"))
    inbox_consumer: str | None = Field(None, validation_alias=_env("CROSSDESK_INBOX_CONSUMER", "inbox_consumer"))

    @field_validator("database_url", mode="after")
    @classmethod
    def _default_database(cls, value: str) -> str:
        return value or f"sqlite:///{state_dir() / 'crossdesk.db'}"

    @field_validator("redis_url", "email_authserv_id", "email_webhook_user", "inbox_consumer", mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("secret_key", "rasa_token", "action_secret", "identity_secret", "email_webhook_password",
                     mode="before")
    @classmethod
    def _blank_secret_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("rasa_url", mode="after")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def trusted_proxy_set(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.trusted_proxies.split(",") if p.strip())

    def secret(self, name: str) -> str:
        """A required secret's value, or a SettingsError that names the variable to set."""
        value = getattr(self, name)
        if value is None or len(value.get_secret_value()) < 16:
            variable = {"secret_key": "CROSSDESK_SECRET_KEY", "rasa_token": "CROSSDESK_RASA_TOKEN",
                        "action_secret": "CROSSDESK_ACTION_SECRET"}.get(name, name.upper())
            raise SettingsError(f"{variable} is not set (or shorter than 16 characters). crossdesk has no default "
                                f"for it: generate one, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                                f", and set it in the environment (bin/run does this for the local demo).")
        return value.get_secret_value()


REQUIRED_SECRETS = ("secret_key", "rasa_token")


def require_secrets(settings: Settings) -> None:
    """Called at app start: a missing secret stops the app with a message saying what to set."""
    for name in REQUIRED_SECRETS:
        settings.secret(name)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:  # pydantic's ValidationError names the field and what is wrong with it
        raise SettingsError(f"invalid crossdesk settings: {exc}") from None
