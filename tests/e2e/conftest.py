"""A real stack for end-to-end tests: trained Rasa model, Rasa server, action server and app processes,
on a freshly migrated and seeded SQLite database. Started once per test session."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from tests.email.conftest import dovecot  # noqa: F401,F811  (a real IMAP server for the email channel)

ROOT = Path(__file__).resolve().parents[2]
IDENTITY_SECRET = "e2e-identity-secret"
WHATSAPP_SECRET = "e2e-whatsapp-app-secret"


SUPPORT_ADDRESS = "support@shop.example"


@pytest.fixture(scope="session")
def smtp_capture():
    """A real SMTP server (aiosmtpd) on loopback capturing what the app sends."""
    from aiosmtpd.controller import Controller

    from tests.email.conftest import _Capture, free_port

    handler = _Capture()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


@pytest.fixture(scope="session")
def fake_graph():
    """A real HTTP server on loopback playing Meta's Graph API (validates bodies and the token)."""
    from tests.whatsapp.fake_graph import FakeGraph

    graph = FakeGraph(token="e2e-graph-token").start()
    yield graph
    graph.stop()


def install_translation_packages(state: Path) -> None:
    """The shipped sv<->en argos packages, installed the way an operator does (bin/crossdesk translate install)."""
    packages = sorted((ROOT / "data" / "translation" / "packages").glob("*.argosmodel"))
    assert packages, "no .argosmodel files shipped in data/translation/packages"
    subprocess.run([sys.executable, "-m", "bot.cli", "translate", "install", *map(str, packages)], cwd=ROOT,
                   env={**os.environ, "CROSSDESK_HOME": str(state)}, check=True, capture_output=True, timeout=300)


def seeded_database(url: str) -> str:
    """Migrate and seed the demo shop; returns an agent's API token for the staff API."""
    from sqlalchemy.orm import Session

    from crm.audit.service import Actor
    from crm.db import make_engine
    from crm.migrate import upgrade
    from crm.demo import live_anchor, seed_demo_shop
    from crm.staff import service as staff

    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        seed_demo_shop(session, anchor=live_anchor(datetime.now(timezone.utc)))
        agent = staff.add_user(session, Actor.cli(), "e2e-agent@shop.test", "E2E Agent", "agent",
                               uuid.uuid4().hex, ["en"])
        _, token = staff.create_token(session, Actor.cli(), agent, "e2e")
        session.commit()
    engine.dispose()
    return token


def staff_api(stack) -> httpx.Client:
    """An agent's authenticated client for the stack's staff API."""
    return httpx.Client(base_url=stack.app_url, headers={"Authorization": f"Bearer {stack.staff_token}"}, timeout=30)


def rasa_api(stack, path: str) -> str:
    """A URL of Rasa's HTTP API (token-protected) on the stack."""
    return f"{stack.rasa_url}{path}{'&' if '?' in path else '?'}token={stack.rasa_token}"


@pytest.fixture(scope="session")
def live_stack(model, tmp_path_factory, fake_graph, dovecot, smtp_capture):  # noqa: F811
    from bot.stack import Stack

    state = tmp_path_factory.mktemp("stack")
    url = f"sqlite:///{state}/crossdesk.db"
    token = seeded_database(url)
    install_translation_packages(state)
    stack = Stack(model=model, state_dir=state, database_url=url,
                  extra_env={"CROSSDESK_IDENTITY_SECRET": IDENTITY_SECRET, "WHATSAPP_APP_SECRET": WHATSAPP_SECRET,
                             "WHATSAPP_VERIFY_TOKEN": "e2e-verify", "WHATSAPP_ACCESS_TOKEN": "e2e-graph-token",
                             "WHATSAPP_PHONE_NUMBER_ID": fake_graph.phone_number_id,
                             "WHATSAPP_GRAPH_URL": fake_graph.base_url,
                             # tests talk faster than people: keep pacing on the path, shorten it
                             "WHATSAPP_RECIPIENT_INTERVAL_S": "0.05", "WHATSAPP_RECIPIENT_BURST": "5",
                             # email: a real Dovecot mailbox polled by IMAP, replies to a real SMTP server
                             "IMAP_HOST": dovecot.host, "IMAP_PORT": str(dovecot.port), "IMAP_USER": dovecot.user,
                             "IMAP_PASSWORD": dovecot.password, "IMAP_SSL": "0", "IMAP_POLL_INTERVAL": "0.5",
                             "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_capture[0].port),
                             "SMTP_FROM": SUPPORT_ADDRESS, "SMTP_STARTTLS": "0"})
    stack.staff_token = token
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
