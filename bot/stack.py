"""Train (cached) and start the three processes: Rasa (Python 3.10 env), actions and the app.

Used by `bin/run`, the end-to-end tests and the benchmark, so all three run the same stack.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from sqlalchemy.engine import make_url

from channels.core.limits import WS_MAX_BYTES
from crm.config import get_settings

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CROSSDESK_CACHE", Path.home() / ".cache" / "crossdesk"))
# Everything that changes what `rasa train` produces.
MODEL_INPUTS = ("config.yml", "bot/domain.yml", "data", "bot/components", "requirements/rasa.lock")


def rasa_python() -> str:
    py = os.environ.get("CROSSDESK_RASA_PYTHON")
    if not py:
        raise RuntimeError("CROSSDESK_RASA_PYTHON is not set: start crossdesk through bin/crossdesk or bin/test")
    return py


def model_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in MODEL_INPUTS:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) \
            if path.is_dir() else [path] if path.exists() else []
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:20]


def ensure_model(log=print) -> Path:
    """The trained model for the current data/config/domain; trains only when they changed."""
    fp = model_fingerprint()
    target = CACHE / "models" / f"{fp}.tar.gz"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"crossdesk: training the Rasa model ({fp}); this happens only when data/config/domain change ...")
    with tempfile.TemporaryDirectory() as out:
        started = time.monotonic()
        subprocess.run([rasa_python(), "-m", "rasa", "train", "--config", "config.yml", "--domain", "bot/domain.yml",
                        "--data", "data", "--out", out, "--fixed-model-name", fp],
                       cwd=ROOT, check=True, env=_rasa_env())
        shutil.move(str(Path(out) / f"{fp}.tar.gz"), target)
        log(f"crossdesk: model trained in {time.monotonic() - started:.0f} s → {target}")
    return target


def _rasa_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", RASA_TELEMETRY_ENABLED="false",
               SQLALCHEMY_SILENCE_UBER_WARNING="1")
    env.pop("DATABASE_URL", None)  # Rasa reads its stores from endpoints.yml only
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LIVE_TRACKER_STORE = "bot.rasa_ext.tracker_store.LiveTrackerStore"
ACTION_SECRET_HEADER = "X-Crossdesk-Action-Secret"
SECRET_VARIABLES = ("CROSSDESK_RASA_TOKEN", "CROSSDESK_ACTION_SECRET")


def internal_secrets(env: dict[str, str] | None = None) -> dict[str, str]:
    """The secrets between the three processes: taken from the environment when set (a deployment), else
    fresh random ones for this start (they never leave the stack)."""
    env = os.environ if env is None else env
    return {name: env.get(name) or secrets.token_urlsafe(32) for name in SECRET_VARIABLES}


def local_secret_key(state_dir: Path, env: dict[str, str] | None = None) -> str:
    """CROSSDESK_SECRET_KEY for a local stack (demo, tests, benchmarks): the environment's, else one made
    once per state directory (mode 0600), so console logins survive a restart. A deployment sets its own."""
    env = os.environ if env is None else env
    if env.get("CROSSDESK_SECRET_KEY"):
        return env["CROSSDESK_SECRET_KEY"]
    path = state_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def endpoints_config(action_url: str, database_url: str | None, redis_url: str | None,
                     tracker_cache: bool | None = None, action_secret: str | None = None) -> dict:
    """Rasa's endpoints: SQL tracker store on PostgreSQL, Redis lock store (and tracker if no PostgreSQL).

    The tracker store is wrapped in LiveTrackerStore (see bot/rasa_ext/tracker_store.py) unless
    CROSSDESK_RASA_TRACKER_CACHE=0, e.g. for several Rasa replicas sharing one store.
    """
    if tracker_cache is None:
        tracker_cache = get_settings().rasa_tracker_cache
    config: dict = {"action_endpoint": {"url": action_url}}
    if action_secret:  # the action server answers only callers that send it (bot/action_server.py)
        config["action_endpoint"]["headers"] = {ACTION_SECRET_HEADER: action_secret}
    backend: dict | None = None
    if database_url and database_url.startswith("postgresql"):
        url = make_url(database_url)
        backend = {"type": "SQL", "dialect": "postgresql", "url": url.host or "127.0.0.1",
                   "port": url.port or 5432, "db": url.database, "username": url.username or "",
                   "password": url.password or ""}
    if redis_url:
        url = make_url(redis_url)
        redis = {"url": url.host or "127.0.0.1", "port": url.port or 6379, "db": int(url.database or 0),
                 "password": url.password}
        redis = {k: v for k, v in redis.items() if v is not None}
        config["lock_store"] = {"type": "redis", **redis, "key_prefix": "crossdesk"}
        if backend is None:
            backend = {"type": "redis", **redis, "key_prefix": "crossdesk:tracker"}
    if tracker_cache:
        config["tracker_store"] = {"type": LIVE_TRACKER_STORE, **({"backend": backend} if backend else {})}
    elif backend:
        config["tracker_store"] = backend
    return config


@dataclass
class Stack:
    """Rasa + action server + app as child processes, on free or given ports."""

    model: Path
    state_dir: Path
    database_url: str
    redis_url: str | None = None
    rasa_port: int = field(default_factory=free_port)
    actions_port: int = field(default_factory=free_port)
    app_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=internal_secrets)

    @property
    def rasa_token(self) -> str:
        """For tests and tools that use Rasa's HTTP API (``?token=``)."""
        return self.secrets["CROSSDESK_RASA_TOKEN"]

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PYTHONPATH=str(ROOT), DATABASE_URL=self.database_url, RASA_URL=self.rasa_url,
                   CROSSDESK_HOME=str(self.state_dir), SANIC_HOST="127.0.0.1", **self.secrets,
                   CROSSDESK_SECRET_KEY=local_secret_key(self.state_dir),
                   # one app process per stack: a stable name lets a restarted app take its own claims back
                   CROSSDESK_INBOX_CONSUMER=f"{socket.gethostname()}-app-{self.app_port}", **self.extra_env)
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return env

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = open(logs / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def start(self, timeout: float = 240) -> Stack:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        endpoints = self.state_dir / "endpoints.yml"
        endpoints.write_text(yaml.safe_dump(endpoints_config(
            f"http://127.0.0.1:{self.actions_port}/webhook", self.database_url, self.redis_url,
            action_secret=self.secrets["CROSSDESK_ACTION_SECRET"])))
        endpoints.chmod(0o600)
        self._spawn("actions", [sys.executable, "-m", "bot.action_server", "--actions", "actions", "--port",
                                str(self.actions_port)], self._env())
        self._spawn_rasa()
        self._spawn_app()
        self.wait_ready(timeout)
        return self

    def _spawn_app(self) -> None:
        self._spawn("app", [sys.executable, "-m", "uvicorn", "channels.app:app", "--host", "127.0.0.1",
                            "--port", str(self.app_port), "--no-access-log",
                            "--ws-max-size", str(WS_MAX_BYTES)], self._env())

    def kill_process(self, name: str) -> None:
        """SIGKILL, no cleanup: what a crash or the OOM killer does (fault tests)."""
        proc = self.procs.get(name)
        if proc and proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()

    def restart_app(self, timeout: float = 120) -> None:
        self._spawn_app()
        self.wait_ready(timeout)

    def _spawn_rasa(self) -> None:
        rasa_env = _rasa_env()
        rasa_env.update(self.extra_env)
        rasa_env["CROSSDESK_RASA_TOKEN"] = self.rasa_token
        # Loopback only; the HTTP API takes the token; the only channel is the app's (bot/rasa_ext/channel.py).
        self._spawn("rasa", [rasa_python(), "-m", "rasa", "run", "--enable-api", "--auth-token", self.rasa_token,
                             "--port", str(self.rasa_port), "--interface", "127.0.0.1", "--model", str(self.model),
                             "--endpoints", str(self.state_dir / "endpoints.yml"),
                             "--credentials", "bot/credentials.app.yml"], rasa_env)

    def restart_rasa(self, timeout: float = 240) -> None:
        """Start Rasa again after stop_process("rasa") (tests of what happens while the bot is down)."""
        self._spawn_rasa()
        self.wait_ready(timeout)

    def start_bare_rasa(self, timeout: float = 240) -> str:
        """A second, unmodified Rasa server (default in-memory stores) with the same model and action
        server — the baseline the benchmark compares the full stack against."""
        port = free_port()
        endpoints = self.state_dir / "endpoints.bare.yml"
        endpoints.write_text(yaml.safe_dump({"action_endpoint": {
            "url": f"http://127.0.0.1:{self.actions_port}/webhook",
            "headers": {ACTION_SECRET_HEADER: self.secrets["CROSSDESK_ACTION_SECRET"]}}}))
        self._spawn("bare_rasa", [rasa_python(), "-m", "rasa", "run", "--enable-api", "--port", str(port),
                                  "--interface", "127.0.0.1", "--model", str(self.model), "--endpoints",
                                  str(endpoints), "--credentials", "bot/credentials.yml"], _rasa_env())
        url = f"http://127.0.0.1:{port}"
        self._wait_for({"bare_rasa": f"{url}/status"}, timeout)
        return url

    def wait_ready(self, timeout: float) -> None:
        self._wait_for({"actions": f"http://127.0.0.1:{self.actions_port}/health",
                        "rasa": f"{self.rasa_url}/status?token={self.rasa_token}", "app": f"{self.app_url}/readyz"},
                       timeout)

    def _wait_for(self, checks: dict[str, str], timeout: float) -> None:
        """Poll each process's health URL until it answers 200 (a Rasa server: with a model loaded)."""
        deadline = time.monotonic() + timeout
        pending = dict(checks)
        while pending:
            for name, url in list(pending.items()):
                proc = self.procs[name]
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.state_dir}/logs/{name}.log")
                try:
                    resp = httpx.get(url, timeout=2)
                    if resp.status_code == 200 and ("rasa" not in name or resp.json().get("model_file")):
                        del pending[name]
                except (httpx.HTTPError, ValueError):
                    pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f} s: {sorted(pending)}; logs in {self.state_dir}/logs")
            if pending:
                time.sleep(0.5)

    def stop_process(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc and proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()

    def stop(self) -> None:
        for name in ("app", "rasa", "bare_rasa", "actions"):
            self.stop_process(name)
