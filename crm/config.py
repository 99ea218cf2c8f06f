"""Runtime settings: one validated object (pydantic-settings), read from the environment once.

Embedded defaults (SQLite file, no Redis) let a newcomer run everything with nothing installed;
DATABASE_URL / REDIS_URL switch to PostgreSQL and Redis without code changes. Secrets have no defaults:
the app refuses to start without them (``require_secrets``) instead of running with a known value.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import (AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo,
                      field_validator, model_validator)
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

if TYPE_CHECKING:  # channel classes are imported where they are built, never by crm at import time
    from channels.email.imap import ImapPoller
    from channels.email.smtp import SmtpSender

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


# --------------------------------------------------------------------------------------------------------------
# Channel sections: Settings.whatsapp and Settings.email, read from the same environment under the variable
# names the channels always used (WHATSAPP_*, IMAP_*, SMTP_*, EMAIL_*). Every field's validation alias is its
# variable, so a validation error names the variable to fix.

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _flag(value: Any, default: bool, variable: str) -> bool:
    if _blank(value):
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{variable} must be true or false (1/0, yes/no, on/off), got {value!r}")


def _variable(model: type[BaseModel], field_name: str) -> str:
    alias = model.model_fields[field_name].validation_alias
    return alias if isinstance(alias, str) else field_name.upper()


def _lookup(data: Mapping[str, Any], model: type[BaseModel], field_name: str) -> Any:
    """A field's raw value whether given by variable (environment) or by field name (code, tests)."""
    variable = _variable(model, field_name)
    return data[variable] if variable in data else data.get(field_name)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _drop_blanks(cls, data: Any) -> Any:
        """An empty variable means "not set": its default applies (as the environment readers always did)."""
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if not (isinstance(value, str) and not value.strip())}
        return data


DEFAULT_GRAPH_URL = "https://graph.facebook.com/v21.0"


def parse_templates(raw: str | None) -> dict[tuple[str, str], tuple]:
    """WHATSAPP_TEMPLATES, JSON in either form:
    {"reply:en": ["reply_reopen", "en_US"], "reply:de": {"name": "reply_reopen", "language": "de"}} or
    [{"purpose": "reply", "language": "en", "name": "reply_reopen", "code": "en_US", "components": [...]}]."""
    if not raw or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"WHATSAPP_TEMPLATES is not valid JSON: {exc}") from None
    items: list[tuple[str, str, Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            purpose, sep, language = str(key).partition(":")
            if not sep:
                raise ValueError(f"WHATSAPP_TEMPLATES key {key!r} is not 'purpose:language'")
            items.append((purpose, language, value))
    elif isinstance(data, list):
        for value in data:
            if not isinstance(value, dict):
                raise ValueError("WHATSAPP_TEMPLATES list items must be objects")
            items.append((str(value.get("purpose", "reply")), str(value.get("language", "en")), value))
    else:
        raise ValueError("WHATSAPP_TEMPLATES must be a JSON object or list")
    templates: dict[tuple[str, str], tuple] = {}
    for purpose, language, value in items:
        if isinstance(value, str):
            ref: tuple = (value, language)
        elif isinstance(value, list) and 2 <= len(value) <= 3 and all(isinstance(v, str) for v in value[:2]):
            ref = tuple(value)
        elif isinstance(value, dict) and isinstance(value.get("name"), str):
            code = value.get("code") or value.get("language_code") or value.get("language") or language
            ref = (value["name"], str(code)) + ((value["components"],) if value.get("components") else ())
        else:
            raise ValueError(f"WHATSAPP_TEMPLATES entry for {purpose}:{language} is not understood")
        templates[(purpose, language)] = ref
    return templates


class WhatsAppSettings(_Section):
    """The WhatsApp Cloud API channel (WHATSAPP_* variables); replies go out only when `configured`."""

    app_secret: str = Field("", validation_alias="WHATSAPP_APP_SECRET", repr=False)
    verify_token: str = Field("", validation_alias="WHATSAPP_VERIFY_TOKEN", repr=False)
    access_token: str = Field("", validation_alias="WHATSAPP_ACCESS_TOKEN", repr=False)
    phone_number_id: str = Field("", validation_alias="WHATSAPP_PHONE_NUMBER_ID")
    graph_url: str = Field(DEFAULT_GRAPH_URL, validation_alias="WHATSAPP_GRAPH_URL")
    templates: dict[tuple[str, str], tuple] = Field(default_factory=dict, validation_alias="WHATSAPP_TEMPLATES")
    # Meta's per-recipient pacing (at most `burst` messages, then one per `interval` seconds).
    recipient_interval_s: float = Field(6.0, ge=0, validation_alias="WHATSAPP_RECIPIENT_INTERVAL_S")
    recipient_burst: int = Field(3, ge=1, validation_alias="WHATSAPP_RECIPIENT_BURST")

    @field_validator("app_secret", "verify_token", "access_token", "phone_number_id", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("graph_url", mode="after")
    @classmethod
    def _graph_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"WHATSAPP_GRAPH_URL must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("templates", mode="before")
    @classmethod
    def _templates(cls, value: Any) -> Any:
        return parse_templates(value) if isinstance(value, str) else value

    @property
    def configured(self) -> bool:
        return bool(self.app_secret and self.access_token and self.phone_number_id)


class EmailSettings(_Section):
    """The email channel: IMAP_HOST, IMAP_PORT (993 with IMAP_SSL, else 143), IMAP_USER, IMAP_PASSWORD,
    IMAP_MAILBOX (INBOX), IMAP_SSL (true), IMAP_POLL_INTERVAL (30 s); SMTP_HOST, SMTP_PORT (587; 465 with
    SMTP_SSL), SMTP_FROM, SMTP_USER, SMTP_PASSWORD, SMTP_STARTTLS (true unless SMTP_SSL), SMTP_SSL (false);
    EMAIL_WEBHOOK_USER / EMAIL_WEBHOOK_PASSWORD (HTTP Basic auth of the Postmark webhook: it refuses every call
    while they are unset) and EMAIL_AUTHSERV_ID (the receiving server whose Authentication-Results is believed)."""

    imap_host: str | None = Field(None, validation_alias="IMAP_HOST")
    imap_port: int = Field(993, ge=1, le=65535, validation_alias="IMAP_PORT")
    imap_user: str | None = Field(None, validation_alias="IMAP_USER")
    imap_password: str | None = Field(None, validation_alias="IMAP_PASSWORD", repr=False)
    imap_mailbox: str = Field("INBOX", validation_alias="IMAP_MAILBOX")
    imap_ssl: bool = Field(True, validation_alias="IMAP_SSL")
    imap_interval_s: float = Field(30.0, validation_alias="IMAP_POLL_INTERVAL")
    smtp_host: str | None = Field(None, validation_alias="SMTP_HOST")
    smtp_port: int = Field(587, ge=1, le=65535, validation_alias="SMTP_PORT")
    smtp_from: str | None = Field(None, validation_alias="SMTP_FROM")
    smtp_user: str | None = Field(None, validation_alias="SMTP_USER")
    smtp_password: str | None = Field(None, validation_alias="SMTP_PASSWORD", repr=False)
    smtp_starttls: bool = Field(True, validation_alias="SMTP_STARTTLS")
    smtp_ssl: bool = Field(False, validation_alias="SMTP_SSL")
    webhook_user: str | None = Field(None, validation_alias="EMAIL_WEBHOOK_USER")
    webhook_password: SecretStr | None = Field(None, validation_alias="EMAIL_WEBHOOK_PASSWORD")
    authserv_id: str | None = Field(None, validation_alias="EMAIL_AUTHSERV_ID")

    @model_validator(mode="before")
    @classmethod
    def _tls_defaults(cls, data: Any) -> Any:
        """Ports and STARTTLS default by the SSL flags: IMAP 993/143, SMTP 587 (STARTTLS) or 465 (SSL)."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        try:
            imap_ssl = _flag(_lookup(data, cls, "imap_ssl"), True, "IMAP_SSL")
            if _blank(_lookup(data, cls, "imap_port")):
                data["imap_port"] = 993 if imap_ssl else 143
        except ValueError:
            pass  # reported by the field itself
        try:
            smtp_ssl = _flag(_lookup(data, cls, "smtp_ssl"), False, "SMTP_SSL")
            if _blank(_lookup(data, cls, "smtp_port")):
                data["smtp_port"] = 465 if smtp_ssl else 587
            if _blank(_lookup(data, cls, "smtp_starttls")):
                data["smtp_starttls"] = not smtp_ssl
        except ValueError:
            pass
        return data

    @field_validator("imap_ssl", "smtp_ssl", "smtp_starttls", mode="before")
    @classmethod
    def _flags(cls, value: Any, info: ValidationInfo) -> bool:
        default = cls.model_fields[info.field_name].default
        return _flag(value, default, _variable(cls, info.field_name))

    @field_validator("imap_port", "smtp_port", mode="before")
    @classmethod
    def _port(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise ValueError(f"{_variable(cls, info.field_name)} must be an integer, got {value!r}") from None
        return value

    @field_validator("imap_interval_s", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> float:
        try:
            seconds = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ValueError(f"IMAP_POLL_INTERVAL must be a number of seconds, got {value!r}") from None
        if not seconds > 0:
            raise ValueError(f"IMAP_POLL_INTERVAL must be more than 0 seconds, got {value!r}")
        return seconds

    @field_validator("imap_host", "smtp_host", "smtp_from", "authserv_id", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return (value.strip() or None) if isinstance(value, str) else value

    @field_validator("smtp_from", mode="after")
    @classmethod
    def _from_address(cls, value: str | None) -> str | None:
        from crm.contacts import normalize_email  # phonenumbers: loaded only when an address is checked

        if value and not normalize_email(value):
            raise ValueError(f"SMTP_FROM is not a valid address: {value!r}")
        return value

    @property
    def imap_enabled(self) -> bool:
        return bool(self.imap_host and self.imap_user)

    @property
    def smtp_enabled(self) -> bool:
        return bool(self.smtp_host and self.smtp_from)

    @property
    def own_addresses(self) -> tuple[str, ...]:
        return tuple(a for a in (self.smtp_from, self.imap_user) if a and "@" in a)

    @property
    def webhook_credentials(self) -> tuple[str, str] | None:
        """(user, password) of the Postmark webhook's Basic auth; None (refuse every call) while either is unset."""
        password = self.webhook_password.get_secret_value() if self.webhook_password else ""
        return (self.webhook_user, password) if self.webhook_user and password else None

    def make_poller(self) -> ImapPoller:
        from channels.email.imap import ImapPoller

        if not self.imap_enabled:
            raise ValueError("IMAP_HOST and IMAP_USER must be set to poll a mailbox")
        return ImapPoller(self.imap_host, self.imap_port, self.imap_user, self.imap_password or "",
                          mailbox=self.imap_mailbox, ssl=self.imap_ssl)

    def make_sender(self) -> SmtpSender:
        from channels.email.smtp import SmtpSender

        if not self.smtp_enabled:
            raise ValueError("SMTP_HOST and SMTP_FROM must be set to send email")
        return SmtpSender(self.smtp_host, self.smtp_port, self.smtp_from, username=self.smtp_user,
                          password=self.smtp_password, starttls=self.smtp_starttls, use_ssl=self.smtp_ssl)


# Which variables feed which section (the environment is case-sensitive here, as the channels always read it).
SECTION_PREFIXES = {"whatsapp": ("WHATSAPP_",), "email": ("IMAP_", "SMTP_", "EMAIL_")}


def _sections(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    return {section: {key: value for key, value in env.items() if key.startswith(prefixes)}
            for section, prefixes in SECTION_PREFIXES.items()}


class _FlatEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source for the flat fields only: the sections come from their own
    variables (_SectionsSource), never from a variable named like the section (a shell's $EMAIL)."""

    def get_field_value(self, field, field_name: str):
        if field_name in SECTION_PREFIXES:
            return None, field_name, False
        return super().get_field_value(field, field_name)


class _SectionsSource(PydanticBaseSettingsSource):
    def get_field_value(self, field, field_name: str):  # required by the base class; __call__ does the work
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return _sections(os.environ)


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

    # The channels: WHATSAPP_* and IMAP_* / SMTP_* / EMAIL_* variables (see the section classes above).
    whatsapp: WhatsAppSettings = Field(default_factory=WhatsAppSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)

    inbox_worker: bool = Field(True, validation_alias=_env("CROSSDESK_INBOX_WORKER", "inbox_worker"))
    # Outbound messages that failed temporarily (channels.core.outbound.RetryPolicy): tried again after
    # base × 2^(n-1) seconds, capped, up to max attempts; the sweep looks for due ones every interval.
    outbound_max_attempts: int = Field(8, ge=1, validation_alias=_env("CROSSDESK_OUTBOUND_MAX_ATTEMPTS",
                                                                      "outbound_max_attempts"))
    outbound_retry_base_s: float = Field(30.0, gt=0, validation_alias=_env("CROSSDESK_OUTBOUND_RETRY_BASE",
                                                                           "outbound_retry_base_s"))
    outbound_retry_cap_s: float = Field(3600.0, gt=0, validation_alias=_env("CROSSDESK_OUTBOUND_RETRY_CAP",
                                                                            "outbound_retry_cap_s"))
    outbound_sweep_interval_s: float = Field(5.0, gt=0, validation_alias=_env("CROSSDESK_OUTBOUND_SWEEP_INTERVAL",
                                                                              "outbound_sweep_interval_s"))
    inbox_consumer: str | None = Field(None, validation_alias=_env("CROSSDESK_INBOX_CONSUMER", "inbox_consumer"))

    # The action server: its bind address (the private compose network sets 0.0.0.0) and, for tests and
    # demos, a pinned "now" (ISO 8601) so the seeded dates line up (crm.demo.seed_clock).
    actions_host: str = Field("127.0.0.1", validation_alias=_env("SANIC_HOST", "actions_host"))
    pinned_now: datetime | None = Field(None, validation_alias=_env("CROSSDESK_NOW", "pinned_now"))
    # Rasa's tracker store wrapped in bot.rasa_ext.tracker_store.LiveTrackerStore (off for several Rasa
    # replicas sharing one store).
    rasa_tracker_cache: bool = Field(True, validation_alias=_env("CROSSDESK_RASA_TRACKER_CACHE",
                                                                 "rasa_tracker_cache"))

    @field_validator("database_url", mode="after")
    @classmethod
    def _default_database(cls, value: str) -> str:
        return value or f"sqlite:///{state_dir() / 'crossdesk.db'}"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return (init_settings, _FlatEnvSource(settings_cls), _SectionsSource(settings_cls), dotenv_settings,
                file_secret_settings)

    @field_validator("redis_url", "inbox_consumer", "pinned_now", mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("secret_key", "rasa_token", "action_secret", "identity_secret", mode="before")
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


def describe(exc: ValidationError) -> str:
    """One line per problem, each naming the variable to fix ("IMAP_PORT must be an integer, got 'x'")."""
    problems = []
    for error in exc.errors(include_url=False):
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        variable = str(error["loc"][-1]) if error.get("loc") else ""
        if variable and variable not in message:
            given = error.get("input")
            message = f"{variable}: {message}" + (f" (got {given!r})" if isinstance(given, (str, int, float)) else "")
        problems.append(message)
    return "; ".join(problems)


def _build(make) -> Settings:
    try:
        return make()
    except ValidationError as exc:
        raise SettingsError(f"invalid crossdesk settings: {describe(exc)}") from None
    except ValueError as exc:  # pydantic-settings could not read a value (e.g. malformed JSON)
        raise SettingsError(f"invalid crossdesk settings: {exc}") from None


class _GivenSettings(Settings):
    """Settings from given values only (no environment, no files): what ``settings_from`` builds."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return (init_settings,)


def settings_from(env: Mapping[str, str], **overrides: Any) -> Settings:
    """Settings from the given variables alone (tests, tools): the same fields, defaults and checks as
    ``get_settings()``, without reading os.environ. Raises SettingsError naming the variable at fault."""
    flat = {key: value for key, value in env.items() if key not in SECTION_PREFIXES}
    return _build(lambda: _GivenSettings(**{**flat, **_sections(env), **overrides}))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once (tests: ``get_settings.cache_clear()``)."""
    return _build(Settings)
