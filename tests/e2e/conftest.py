"""A real stack for end-to-end tests: trained Rasa model, Rasa server, action server and app processes,
on a freshly migrated and seeded SQLite database. Started once per test session."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import httpx
import pytest

IDENTITY_SECRET = "e2e-identity-secret"


def seeded_database(url: str) -> None:
    from sqlalchemy.orm import Session

    from crm.db import make_engine
    from crm.migrate import upgrade
    from crm.seed import live_anchor, seed_demo_shop

    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        seed_demo_shop(session, anchor=live_anchor(datetime.now(timezone.utc)))
        session.commit()
    engine.dispose()


@pytest.fixture(scope="session")
def live_stack(model, tmp_path_factory):
    from bot.stack import Stack

    state = tmp_path_factory.mktemp("stack")
    url = f"sqlite:///{state}/crossdesk.db"
    seeded_database(url)
    stack = Stack(model=model, state_dir=state, database_url=url,
                  extra_env={"CROSSDESK_IDENTITY_SECRET": IDENTITY_SECRET})
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


class Chat:
    """One shopper talking to the app's REST channel."""

    def __init__(self, base_url: str, sender: str | None = None, metadata: dict | None = None):
        self.url = f"{base_url}/webhooks/rest/webhook"
        self.sender = sender or f"e2e-{uuid.uuid4().hex[:10]}"
        self.metadata = metadata or {}
        self.client = httpx.Client(timeout=60)

    def say(self, text: str) -> list[dict]:
        resp = self.client.post(self.url, json={"sender": self.sender, "message": text, "metadata": self.metadata})
        assert resp.status_code == 200, resp.text
        return resp.json()

    def text(self, text: str) -> str:
        """The bot's replies to `text`, joined (lower-cased for easy asserts)."""
        return "\n".join(m.get("text", "") for m in self.say(text)).lower()


@pytest.fixture
def chat(live_stack):
    def make(**kwargs) -> Chat:
        return Chat(live_stack.app_url, **kwargs)

    return make
