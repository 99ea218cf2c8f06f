"""The README's commands as a user runs them: bin/crossdesk up + chat, nlu-predict, nlu-eval."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.stack import ROOT, free_port

CLI = str(ROOT / "bin" / "crossdesk")


def test_nlu_predict_and_eval(tmp_path, model):
    src = tmp_path / "in.csv"
    rows = [("where is my parcel", "en", "track_order"), ("i want to send these shoes back", "en", "return_item"),
            ("hello!", "en", "greet"), ("when do you open tomorrow", "en", "ask_opening_hours")]
    with src.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "language", "intent"])
        writer.writerows(rows)
    out = tmp_path / "out.csv"
    subprocess.run([CLI, "nlu-predict", str(src), str(out)], check=True, capture_output=True, timeout=300)
    predicted = list(csv.DictReader(out.open()))
    assert [r["text"] for r in predicted] == [r[0] for r in rows]
    assert predicted[0]["predicted_intent"] == "track_order" and float(predicted[0]["confidence"]) > 0.5
    assert all(0 <= float(r["confidence"]) <= 1 for r in predicted)

    result = subprocess.run([CLI, "nlu-eval", str(src)], check=True, capture_output=True, text=True, timeout=300)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["overall"]["n"] == 3  # the unknown intent is not scored ...
    assert summary["not_scored_unknown_intents"] == {"ask_opening_hours": 1}  # ... but reported apart
    assert set(summary["per_language"]) == {"en"}
    assert summary["per_intent"]["track_order"]["n"] == 1


def _wait_for(proc: subprocess.Popen, needle: str, timeout: float) -> str:
    seen, deadline = "", time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        chunk = proc.stdout.read()  # binary pipe: None or b"" when nothing is waiting
        if chunk:
            seen += chunk.decode(errors="replace")
            if needle in seen:
                return seen
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError(f"{needle!r} not printed; output so far:\n{seen[-3000:]}")


def _run_and_chat(tmp_path: Path, env_extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(CROSSDESK_HOME=str(tmp_path / "home"), **env_extra)
    port = free_port()
    up = subprocess.Popen([CLI, "up", "--port", str(port), "--rasa-port", str(free_port()),
                           "--actions-port", str(free_port())], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, start_new_session=True)
    try:
        banner = _wait_for(up, "Press Ctrl-C to stop.", 300)
        assert f"bin/crossdesk chat --url http://127.0.0.1:{port}" in banner
        script = "where is my order\nCD-100002\noliver.bennett@example.com\n"
        chat = subprocess.run([CLI, "chat", "--url", f"http://127.0.0.1:{port}"], input=script, env=env,
                              capture_output=True, text=True, timeout=120)
        assert chat.returncode == 0, chat.stderr
        return chat.stdout
    finally:
        os.killpg(up.pid, signal.SIGINT)
        assert up.wait(60) == 0 or up.returncode in (-2, 130)


def test_run_command_gives_a_working_chat_on_the_demo_shop(tmp_path, model):
    transcript = _run_and_chat(tmp_path, {})
    assert "order number" in transcript and "import customs" in transcript, transcript
    assert (tmp_path / "home" / "crossdesk.db").exists()  # the embedded SQLite default


@pytest.fixture
def fresh_pg_database():
    """A throwaway PostgreSQL database for one whole stack (Rasa's tracker store creates its own tables)."""
    from crm.db import make_engine
    from tests.conftest import PG_BASE_URL

    name = f"crossdesk_run_{os.getpid()}"
    admin = make_engine(PG_BASE_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_BASE_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_run_command_uses_postgres_and_redis_when_configured(tmp_path, model, fresh_pg_database):
    import redis

    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/7"
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    transcript = _run_and_chat(tmp_path, {"DATABASE_URL": fresh_pg_database, "REDIS_URL": redis_url})
    assert "import customs" in transcript, transcript
    assert not (tmp_path / "home" / "crossdesk.db").exists()

    from crm.db import make_engine

    engine = make_engine(fresh_pg_database)
    with engine.connect() as conn:
        orders = conn.execute(text("SELECT count(*) FROM orders")).scalar()
        rasa_events = conn.execute(text("SELECT count(*) FROM events WHERE type_name = 'user'")).scalar()
        transcript_rows = conn.execute(text("SELECT count(*) FROM messages")).scalar()
    engine.dispose()
    assert orders >= 1000  # seeded into PostgreSQL
    assert rasa_events == 3  # Rasa's SQL tracker store holds the conversation
    assert transcript_rows >= 6
    assert any(k.startswith(b"crossdesk:rl:") for k in client.keys("*"))  # the app's rate limiter
    client.flushdb()
