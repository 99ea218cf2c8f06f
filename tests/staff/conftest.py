"""The real app, in process (no lifespan: no Rasa needed), on the per-test database, with staff users."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"


@dataclass
class Staff:
    client: TestClient
    tokens: dict[str, str]  # role -> API token
    emails: dict[str, str]  # role -> email


@pytest.fixture
def staff_app(app_db, monkeypatch):
    from channels.app import app
    from crm import config
    from crm.audit.service import Actor
    from crm.db import unit_of_work
    from crm.staff import service as staff

    monkeypatch.setenv("CROSSDESK_SECRET_KEY", "test-secret-key-0123456789abcdef")
    config.get_settings.cache_clear()
    tokens, emails = {}, {}
    with unit_of_work() as session:
        for role in ("admin", "agent", "marketer"):
            user = staff.add_user(session, Actor.cli(), f"{role}@shop.test", role.title(), role, PASSWORD, ["en"])
            tokens[role] = staff.create_token(session, Actor.cli(), user, "tests")[1]
            emails[role] = user.email
    yield Staff(TestClient(app, base_url="https://testserver"), tokens, emails)
    config.get_settings.cache_clear()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
