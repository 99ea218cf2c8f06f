"""The Rasa project itself: data validates cleanly, every flow's test story passes, training is cached."""
from __future__ import annotations

import subprocess

from bot import stack

ROOT = stack.ROOT


def run_rasa(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([stack.rasa_python(), "-m", "rasa", *args], cwd=ROOT, env=stack._rasa_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_rasa_data_validate_is_clean():
    result = run_rasa("data", "validate", "--fail-on-warnings", "--config", "config.yml",
                      "--domain", "bot/domain.yml", "--data", "data")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_every_flow_story_passes(model, tmp_path):
    result = run_rasa("test", "core", "--model", str(model), "--stories", "tests/stories",
                      "--out", str(tmp_path), "--fail-on-prediction-errors", "--no-plot")
    failed = (tmp_path / "failed_test_stories.yml")
    detail = failed.read_text() if failed.exists() else ""
    assert result.returncode == 0, detail[-4000:] + result.stdout[-2000:] + result.stderr[-2000:]


def test_training_is_cached_by_fingerprint(model, tmp_path, monkeypatch):
    assert model.name == f"{stack.model_fingerprint()}.tar.gz"
    # a second call with unchanged inputs returns the cached file without training
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    assert stack.ensure_model() == model and calls == []
    # changing the data changes the fingerprint
    before = stack.model_fingerprint()
    extra = ROOT / "data" / "nlu" / "zz_fingerprint_probe.yml"
    extra.write_text('version: "3.1"\nnlu: []\n')
    try:
        assert stack.model_fingerprint() != before
    finally:
        extra.unlink()
    assert stack.model_fingerprint() == before


def test_endpoints_use_postgres_and_redis_when_configured():
    cfg = stack.endpoints_config("http://127.0.0.1:5055/webhook",
                                 "postgresql+psycopg://user:pw@db.example:5433/shop", "redis://cache:6380/2",
                                 tracker_cache=True)
    assert cfg["tracker_store"]["type"] == stack.LIVE_TRACKER_STORE
    assert cfg["tracker_store"]["backend"] == {"type": "SQL", "dialect": "postgresql", "url": "db.example",
                                               "port": 5433, "db": "shop", "username": "user", "password": "pw"}
    assert cfg["lock_store"]["type"] == "redis" and cfg["lock_store"]["port"] == 6380 and cfg["lock_store"]["db"] == 2
    plain = stack.endpoints_config("http://x/webhook", "postgresql+psycopg://u@h/db", None, tracker_cache=False)
    assert plain["tracker_store"]["type"] == "SQL"  # several Rasa replicas: no in-process cache
    embedded = stack.endpoints_config("http://x/webhook", "sqlite:///x.db", None, tracker_cache=True)
    assert embedded["tracker_store"] == {"type": stack.LIVE_TRACKER_STORE}  # memory only, no backend
    assert "lock_store" not in embedded  # Rasa's in-memory lock store
    redis_only = stack.endpoints_config("http://x/webhook", "sqlite:///x.db", "redis://localhost:6379/0",
                                        tracker_cache=True)
    assert redis_only["tracker_store"]["backend"]["type"] == "redis"
