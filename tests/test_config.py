"""crm.config: one validated Settings object, channel sections included, read from the environment once."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from crm import config
from crm.config import EmailSettings, Settings, SettingsError, WhatsAppSettings, settings_from


@pytest.fixture
def fresh_settings():
    config.get_settings.cache_clear()
    yield config.get_settings
    config.get_settings.cache_clear()


def test_channel_sections_come_from_their_variables(monkeypatch, fresh_settings):
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", "123")
    monkeypatch.setenv("WHATSAPP_RECIPIENT_BURST", "5")
    monkeypatch.setenv("IMAP_HOST", " imap.shop.test ")
    monkeypatch.setenv("EMAIL_AUTHSERV_ID", "mx.shop.test")
    monkeypatch.setenv("EMAIL", "someone@example.com")  # a shell's $EMAIL is not the email section
    monkeypatch.setenv("WHATSAPP", "{broken")
    settings = fresh_settings()
    assert isinstance(settings.whatsapp, WhatsAppSettings) and isinstance(settings.email, EmailSettings)
    assert (settings.whatsapp.phone_number_id, settings.whatsapp.recipient_burst) == ("123", 5)
    assert (settings.email.imap_host, settings.email.authserv_id) == ("imap.shop.test", "mx.shop.test")
    assert fresh_settings() is settings  # read once


def test_settings_from_reads_only_the_given_mapping(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///from-the-environment.db")
    monkeypatch.setenv("SMTP_PORT", "not a port")  # would be refused if it were read
    settings = settings_from({"DATABASE_URL": "sqlite:///given.db", "SMTP_HOST": "smtp.shop.test"})
    assert isinstance(settings, Settings)
    assert settings.database_url == "sqlite:///given.db"
    assert (settings.email.smtp_host, settings.email.smtp_port) == ("smtp.shop.test", 587)
    assert settings_from({}, sender_rate_limit=7).sender_rate_limit == 7


def test_errors_name_every_variable_at_fault():
    with pytest.raises(SettingsError) as exc:
        settings_from({"CROSSDESK_SENDER_RATE_LIMIT": "0", "IMAP_PORT": "abc", "WHATSAPP_GRAPH_URL": "ftp://x"})
    message = str(exc.value)
    assert message.startswith("invalid crossdesk settings: ")
    for expected in ("CROSSDESK_SENDER_RATE_LIMIT", "IMAP_PORT must be an integer, got 'abc'",
                     "WHATSAPP_GRAPH_URL must be an http(s) URL"):
        assert expected in message
    assert "Traceback" not in message and "pydantic" not in message


def test_action_server_and_launcher_settings():
    default = settings_from({})
    assert (default.actions_host, default.pinned_now, default.rasa_tracker_cache) == ("127.0.0.1", None, True)
    pinned = settings_from({"CROSSDESK_NOW": "2025-03-14T15:00:00+00:00", "SANIC_HOST": "0.0.0.0",
                            "CROSSDESK_RASA_TRACKER_CACHE": "0"})
    assert pinned.pinned_now == datetime(2025, 3, 14, 15, 0, tzinfo=timezone.utc)
    assert (pinned.actions_host, pinned.rasa_tracker_cache) == ("0.0.0.0", False)
    assert settings_from({"CROSSDESK_NOW": " "}).pinned_now is None
    with pytest.raises(SettingsError, match="CROSSDESK_NOW"):
        settings_from({"CROSSDESK_NOW": "yesterday"})


def test_actions_clock_is_pinned_by_the_settings(monkeypatch, fresh_settings):
    from actions.context import now

    monkeypatch.setenv("CROSSDESK_NOW", "2025-03-14T15:00:00+00:00")
    fresh_settings.cache_clear()
    assert now() == datetime(2025, 3, 14, 15, 0, tzinfo=timezone.utc)
    monkeypatch.delenv("CROSSDESK_NOW")
    fresh_settings.cache_clear()
    assert abs((now() - datetime.now(timezone.utc)).total_seconds()) < 60


def test_crm_config_imports_no_channel_code():
    import subprocess
    import sys

    code = ("import sys, crm.config; crm.config.settings_from({'SMTP_FROM': 'a@b.example'}); "
            "print(sorted(m for m in sys.modules if m.startswith('channels')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
