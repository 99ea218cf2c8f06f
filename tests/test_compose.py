"""Static checks of docker-compose.yml, Dockerfile and bot/endpoints.docker.yml.

No container is started.  The compose file is read with PyYAML and its
``${VAR:-default}`` interpolation is resolved the way compose does it, with an
empty environment (i.e. the defaults someone gets from a plain
``docker compose up``), then every wire is followed: URLs -> service names and
ports, depends_on -> healthchecks, env vars Rasa substitutes into the endpoints
file -> the rasa service's environment, paths -> files in the repo.
If the docker compose plugin is installed, ``docker compose config -q`` runs too.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
ENDPOINTS_FILE = REPO / "bot" / "endpoints.docker.yml"

RASA_IMAGE = "rasa/rasa:3.6.21"
EXPECTED_SERVICES = {"postgres", "redis", "rasa-train", "rasa", "actions", "app"}
APP_ENV = {"DATABASE_URL", "REDIS_URL", "RASA_URL"}
ACTIONS_ENV = {"DATABASE_URL", "REDIS_URL"}
MUST_EXIST = [
    "config.yml",
    "bot/domain.yml",
    "data",
    "requirements/app.lock",
    "actions",
    "channels",
    "crm",
]
REPO_MOUNT = "/app"  # where the Rasa containers see the repo


# --------------------------------------------------------------------- helpers

_VAR = re.compile(r"\$(?:\$|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose-style interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}."""

    def repl(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        expr = m.group(1) if m.group(1) is not None else m.group(2)
        mm = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?", expr, re.S)
        assert mm, f"bad interpolation ${{{expr}}} in {value!r}"
        name, op, arg = mm.groups()
        cur = env.get(name)
        if op is None:
            return cur or ""
        if op == ":-":
            return cur if cur else interpolate(arg, env)
        if op == "-":
            return cur if cur is not None else interpolate(arg, env)
        if op in (":?", "?"):
            if cur is None or (op == ":?" and cur == ""):
                raise AssertionError(f"required variable {name} is unset: {arg}")
            return cur
        raise AssertionError(f"unsupported operator {op!r} in {value!r}")

    return _VAR.sub(repl, value)


def interpolate_tree(node, env: dict[str, str]):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(n, env) for n in node]
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env) for k, v in node.items()}
    return node


def as_argv(cmd) -> list[str]:
    if cmd is None:
        return []
    if isinstance(cmd, str):
        return shlex.split(cmd)
    return [str(c) for c in cmd]


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            k, _, v = item.partition("=")
            out[k] = v
        return out
    return {k: "" if v is None else str(v) for k, v in env.items()}


def flag(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def port_of_command(argv: list[str], default: int | None = None) -> int | None:
    p = flag(argv, "--port") or flag(argv, "-p")
    return int(p) if p is not None else default


def depends_on(service: dict) -> dict[str, str]:
    dep = service.get("depends_on") or {}
    if isinstance(dep, list):
        return {d: "service_started" for d in dep}
    return {k: (v or {}).get("condition", "service_started") for k, v in dep.items()}


def volume_mounts(service: dict) -> list[tuple[str, str]]:
    out = []
    for v in service.get("volumes") or []:
        if isinstance(v, dict):
            out.append((str(v.get("source", "")), str(v["target"])))
        else:
            parts = v.split(":")
            out.append((parts[0], parts[1]) if len(parts) > 1 else ("", parts[0]))
    return out


def is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


# --------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def raw() -> dict:
    assert COMPOSE_FILE.is_file(), "docker-compose.yml missing at the repo root"
    return yaml.safe_load(COMPOSE_FILE.read_text())


SECRETS = {"CROSSDESK_SECRET_KEY": "k" * 40, "CROSSDESK_RASA_TOKEN": "r" * 32, "CROSSDESK_ACTION_SECRET": "a" * 32}


@pytest.fixture(scope="module")
def compose(raw) -> dict:
    """The compose file with defaults applied (an environment holding only the required secrets)."""
    return interpolate_tree(raw, dict(SECRETS))


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_each_secret_is_required_and_named_when_missing(raw, missing):
    env = {k: v for k, v in SECRETS.items() if k != missing}
    with pytest.raises(AssertionError, match=f"required variable {missing} is unset"):
        interpolate_tree(raw, env)


def test_secrets_reach_the_services_that_check_them(services):
    assert env_of(services["app"])["CROSSDESK_SECRET_KEY"] == SECRETS["CROSSDESK_SECRET_KEY"]
    assert env_of(services["app"])["CROSSDESK_RASA_TOKEN"] == SECRETS["CROSSDESK_RASA_TOKEN"]
    assert env_of(services["rasa"])["CROSSDESK_RASA_TOKEN"] == SECRETS["CROSSDESK_RASA_TOKEN"]
    assert flag(as_argv(services["rasa"]["command"]), "--auth-token") == SECRETS["CROSSDESK_RASA_TOKEN"]
    assert env_of(services["rasa"])["CROSSDESK_ACTION_SECRET"] == SECRETS["CROSSDESK_ACTION_SECRET"]
    assert env_of(services["actions"])["CROSSDESK_ACTION_SECRET"] == SECRETS["CROSSDESK_ACTION_SECRET"]


def test_only_the_app_publishes_a_port(services):
    published = sorted(name for name, svc in services.items() if svc.get("ports"))
    assert published == ["app"], published


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def endpoints_text() -> str:
    assert ENDPOINTS_FILE.is_file(), "bot/endpoints.docker.yml missing"
    return ENDPOINTS_FILE.read_text()


@pytest.fixture(scope="module")
def endpoints(services, endpoints_text) -> dict:
    """endpoints.docker.yml as Rasa sees it inside the rasa container.

    Rasa expands ``${VAR}`` in string values with os.path.expandvars and refuses
    to start if one is unset; ``${VAR:-default}`` is not supported there.
    """
    rasa_env = env_of(services["rasa"])
    pattern = re.compile(r"\$\{([^}]*)\}")

    def expand(node):
        if isinstance(node, dict):
            return {k: expand(v) for k, v in node.items()}
        if isinstance(node, list):
            return [expand(v) for v in node]
        if isinstance(node, str):
            for name in pattern.findall(node):
                assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), (
                    f"${{{name}}} in {ENDPOINTS_FILE.name}: Rasa expands only plain ${{VAR}}"
                )
                assert rasa_env.get(name), (
                    f"{name} is used in {ENDPOINTS_FILE.name} but not set on the rasa service"
                )
            out = pattern.sub(lambda m: rasa_env[m.group(1)], node)
            assert "$" not in out, f"unexpanded variable in {node!r}"
            return out
        return node

    return expand(yaml.safe_load(endpoints_text))


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """Dockerfile instructions as (KEYWORD, args), continuation lines joined."""
    assert DOCKERFILE.is_file(), "Dockerfile missing at the repo root"
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            kw, _, rest = line.partition(" ")
            out.append((kw.upper(), rest.strip()))
    return out


# --------------------------------------------------------------------- services & images


def test_services_present(services):
    missing = EXPECTED_SERVICES - set(services)
    assert not missing, f"missing services: {sorted(missing)}"


def test_images(services):
    assert services["rasa"]["image"] == RASA_IMAGE
    assert services["rasa-train"]["image"] == RASA_IMAGE
    assert re.fullmatch(r"postgres:16(\.\d+)*(-[a-z0-9.]+)?(@sha256:[0-9a-f]+)?", services["postgres"]["image"])
    assert services["redis"]["image"].startswith("redis:7")
    for name in ("actions", "app"):
        assert "build" in services[name], f"{name} must be built from the repo Dockerfile"
        build = services[name]["build"]
        ctx = build if isinstance(build, str) else build.get("context", ".")
        df = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (REPO / ctx / df).resolve() == DOCKERFILE.resolve()
    # app and actions run the same image
    assert services["app"].get("image") == services["actions"].get("image")


def test_dockerfile_base_and_install(dockerfile):
    froms = [a for k, a in dockerfile if k == "FROM"]
    assert froms and froms[-1].split()[0] == "python:3.11-slim"
    runs = " ".join(a for k, a in dockerfile if k == "RUN")
    assert re.search(r"pip install [^&;]*-r requirements/app\.lock", runs)
    copies = [a for k, a in dockerfile if k == "COPY"]
    # the lock file is in the image before pip runs
    first_pip = next(i for i, (k, a) in enumerate(dockerfile) if k == "RUN" and "app.lock" in a)
    assert any(
        k == "COPY" and "requirements/app.lock" in a for k, a in dockerfile[:first_pip]
    ), "requirements/app.lock is not COPYed before pip install"
    assert copies


# --------------------------------------------------------------------- depends_on & healthchecks


def test_depends_on_targets_exist_and_conditions_are_satisfiable(services):
    for name, svc in services.items():
        for dep, cond in depends_on(svc).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert dep != name
            if cond == "service_healthy":
                hc = services[dep].get("healthcheck")
                assert hc and not hc.get("disable") and hc.get("test"), (
                    f"{name} waits for {dep} to be healthy but {dep} has no healthcheck"
                )
            elif cond == "service_completed_successfully":
                assert services[dep].get("restart", "no") in ("no", False), (
                    f"{dep} must be one-shot (restart: no) for {name} to wait for it"
                )
                assert "healthcheck" not in services[dep]
            else:
                assert cond == "service_started", f"unknown condition {cond}"


def test_no_dependency_cycle(services):
    state: dict[str, int] = {}

    def visit(n, path):
        assert state.get(n) != 1, f"depends_on cycle: {' -> '.join(path + [n])}"
        if state.get(n) == 2:
            return
        state[n] = 1
        for d in depends_on(services[n]):
            visit(d, path + [n])
        state[n] = 2

    for n in services:
        visit(n, [])


def test_required_dependencies(services):
    rasa = depends_on(services["rasa"])
    assert rasa.get("rasa-train") == "service_completed_successfully"
    assert rasa.get("postgres") == "service_healthy"
    assert rasa.get("redis") == "service_healthy"
    for name in ("app", "actions"):
        deps = depends_on(services[name])
        assert deps.get("postgres") == "service_healthy", name
        assert deps.get("redis") == "service_healthy", name
    assert "rasa" in depends_on(services["app"])
    assert services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["healthcheck"]["test"]


def test_healthcheck_probes_use_the_service_port(services):
    for name in ("rasa", "actions"):
        hc = services[name].get("healthcheck")
        if not hc:
            continue
        port = port_of_command(as_argv(services[name].get("command")))
        probe = " ".join(as_argv(hc["test"]))
        assert f":{port}/" in probe, f"{name} healthcheck does not probe its --port {port}"


# --------------------------------------------------------------------- env & wiring


def test_env_vars_present(raw, services):
    for name, needed in (("app", APP_ENV), ("actions", ACTIONS_ENV)):
        env = env_of(services[name])
        missing = {v for v in needed if not env.get(v)}
        assert not missing, f"{name} lacks {sorted(missing)}"
        # overridable from the host environment
        raw_env = env_of(raw["services"][name])
        for var in needed:
            assert raw_env[var].startswith("${" + var), f"{name}.{var} is not ${{{var}:-...}}"


def test_rasa_url_matches_rasa_service_and_port(services):
    url = urlsplit(env_of(services["app"])["RASA_URL"])
    assert url.scheme == "http"
    assert url.hostname == "rasa" and "rasa" in services
    rasa_port = port_of_command(as_argv(services["rasa"]["command"]))
    assert rasa_port is not None, "rasa command has no --port"
    assert url.port == rasa_port
    argv = as_argv(services["rasa"]["command"])
    assert argv[0] == "run" and "--enable-api" in argv


def test_action_endpoint_matches_actions_service(services, endpoints):
    url_s = env_of(services["rasa"])["ACTION_ENDPOINT_URL"]
    url = urlsplit(url_s)
    assert url.hostname == "actions" and "actions" in services
    argv = as_argv(services["actions"]["command"])
    assert argv[:5] == ["python", "-m", "bot.action_server", "--actions", "actions"], argv
    actions_port = port_of_command(argv, default=5055)
    assert url.port == actions_port == 5055
    assert url.path == "/webhook"
    assert endpoints["action_endpoint"]["url"] == url_s
    assert endpoints["action_endpoint"]["headers"] == {"X-Crossdesk-Action-Secret": SECRETS["CROSSDESK_ACTION_SECRET"]}


def test_app_command(services):
    argv = as_argv(services["app"]["command"])
    assert argv[0] == "uvicorn" and "channels.app:app" in argv
    assert flag(argv, "--host") == "0.0.0.0"
    assert port_of_command(argv) == 8000


def test_published_ports_target_the_listening_ports(services):
    expected = {"app": 8000, "rasa": port_of_command(as_argv(services["rasa"]["command"]))}
    for name, port in expected.items():
        for p in services[name].get("ports") or []:
            target = int(str(p).rsplit(":", 1)[-1].split("/")[0])
            assert target == port, f"{name} publishes container port {target}, listens on {port}"


def test_database_url_matches_postgres_service(services):
    pg = env_of(services["postgres"])
    for name in ("app", "actions"):
        url = urlsplit(env_of(services[name])["DATABASE_URL"])
        assert url.scheme in ("postgresql+psycopg", "postgresql+psycopg2", "postgresql")
        assert url.hostname == "postgres"
        assert (url.port or 5432) == 5432
        assert url.username == pg["POSTGRES_USER"]
        assert url.password == pg["POSTGRES_PASSWORD"]
        assert url.path.lstrip("/") == pg["POSTGRES_DB"]


def test_redis_url_matches_redis_service(services):
    for name in ("app", "actions"):
        url = urlsplit(env_of(services[name])["REDIS_URL"])
        assert url.scheme == "redis" and url.hostname == "redis" and (url.port or 6379) == 6379


# --------------------------------------------------------------------- endpoints file


def test_endpoints_tracker_store(services, endpoints):
    ts = endpoints["tracker_store"]
    assert ts["type"] == "SQL"
    assert ts["dialect"] == "postgresql"
    assert ts["url"] == "postgres" and ts["url"] in services
    assert isinstance(ts.get("port", 5432), int) and ts.get("port", 5432) == 5432
    pg = env_of(services["postgres"])
    assert ts["username"] == pg["POSTGRES_USER"]
    assert ts["password"] == pg["POSTGRES_PASSWORD"]
    assert ts["db"] == "crossdesk_rasa"
    # the db must get created: by Rasa via login_db, or by the postgres init script
    created_by_init = pg.get("RASA_TRACKER_DB") == ts["db"] and any(
        "RASA_TRACKER_DB" in f.read_text() for f in (REPO / "docker" / "postgres-init").glob("*")
    )
    assert ts.get("login_db") == pg["POSTGRES_DB"] or created_by_init


def test_endpoints_lock_store(services, endpoints):
    ls = endpoints["lock_store"]
    assert ls["type"] == "redis"
    assert ls["url"] == "redis" and ls["url"] in services
    assert isinstance(ls.get("port", 6379), int) and ls.get("port", 6379) == 6379
    if "key_prefix" in ls:
        assert re.fullmatch(r"[A-Za-z0-9]+", ls["key_prefix"]), "Rasa wants an alphanumeric key_prefix"


def test_endpoints_file_is_the_one_rasa_loads(services):
    argv = as_argv(services["rasa"]["command"])
    assert flag(argv, "--endpoints") == "bot/endpoints.docker.yml"


# --------------------------------------------------------------------- rasa model & repo mount


def test_rasa_train_and_model_volume(compose, services):
    train_cmd = " ".join(as_argv(services["rasa-train"].get("entrypoint")) + as_argv(services["rasa-train"]["command"]))
    for piece in ("rasa train", "--config config.yml", "--domain bot/domain.yml", "--data data", "--out /models"):
        assert piece in train_cmd, f"rasa-train command lacks {piece!r}"
    model_dir = flag(as_argv(services["rasa"]["command"]), "--model")
    assert model_dir == "/models"
    named = set(compose.get("volumes") or {})
    for name in ("rasa-train", "rasa"):
        mounts = dict((t, s) for s, t in volume_mounts(services[name]))
        src = mounts.get("/models", "").split(":")[0]
        assert src and not is_bind(src) and src in named, f"{name}: /models is not a named volume"
    assert dict((t, s) for s, t in volume_mounts(services["rasa"]))["/models"] == dict(
        (t, s) for s, t in volume_mounts(services["rasa-train"])
    )["/models"]
    pg_mounts = dict((t, s) for s, t in volume_mounts(services["postgres"]))
    assert pg_mounts.get("/var/lib/postgresql/data") in named


def test_rasa_containers_see_the_repo(services):
    for name in ("rasa-train", "rasa"):
        svc = services[name]
        assert env_of(svc).get("PYTHONPATH") == REPO_MOUNT, f"{name} needs PYTHONPATH=/app"
        assert svc.get("working_dir", REPO_MOUNT) == REPO_MOUNT
        binds = [(s, t) for s, t in volume_mounts(svc) if is_bind(s)]
        assert any(
            t == REPO_MOUNT and (REPO / s).resolve() == REPO for s, t in binds
        ), f"{name}: repo is not mounted at {REPO_MOUNT}"


# --------------------------------------------------------------------- paths


def referenced_paths(services, dockerfile) -> set[str]:
    paths: set[str] = set(MUST_EXIST)
    for svc in services.values():
        for s, _ in volume_mounts(svc):
            if s.startswith("."):
                paths.add(s)
        build = svc.get("build")
        if build:
            ctx = build if isinstance(build, str) else build.get("context", ".")
            paths.add(ctx)
            if isinstance(build, dict) and build.get("dockerfile"):
                paths.add(str(Path(ctx) / build["dockerfile"]))
    for name in ("rasa", "rasa-train"):
        argv = as_argv(services[name].get("entrypoint")) + as_argv(services[name].get("command"))
        argv = shlex.split(" ".join(argv).replace(";", " "))
        for f in ("--endpoints", "--credentials", "--config", "--domain", "--data"):
            v = flag(argv, f)
            if v:
                paths.add(v)
    for kw, args in dockerfile:
        if kw in ("COPY", "ADD") and "--from" not in args:
            for src in args.split()[:-1]:
                if not src.startswith("--"):
                    paths.add(src)
    return paths


def test_referenced_paths_exist(services, dockerfile):
    paths = referenced_paths(services, dockerfile)
    for must in ("bot/endpoints.docker.yml", "bot/credentials.app.yml", "requirements/app.lock", "."):
        assert must in paths, f"path collection lost {must}"  # guard the collector itself
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing, f"referenced but missing in the repo: {missing}"


def test_credentials_enable_only_the_app_channel(services):
    argv = as_argv(services["rasa"]["command"])
    assert flag(argv, "--credentials") == "bot/credentials.app.yml"
    data = yaml.safe_load((REPO / "bot" / "credentials.app.yml").read_text()) or {}
    assert list(data) == ["bot.rasa_ext.channel.CrossdeskInput"], "the stack's Rasa serves only the app's channel"


def test_postgres_init_script_is_mounted_and_executable(services):
    mounts = dict((t, s) for s, t in volume_mounts(services["postgres"]))
    src = mounts.get("/docker-entrypoint-initdb.d")
    assert src, "postgres init scripts are not mounted"
    scripts = [p for p in (REPO / src).iterdir() if p.suffix in (".sh", ".sql")]
    assert scripts
    for p in scripts:
        if p.suffix == ".sh":
            assert p.stat().st_mode & 0o111, f"{p} is not executable"


# --------------------------------------------------------------------- docker compose itself


def _compose_available() -> bool:
    if not shutil.which("docker"):
        return False
    r = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    return r.returncode == 0


def test_docker_compose_config():
    if not _compose_available():
        pytest.skip("docker compose plugin not installed (`docker compose version` fails)")
    r = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr


def test_the_image_installs_no_test_only_package():
    runtime = {line.split("==")[0].lower() for line in (REPO / "requirements" / "app.lock").read_text().splitlines()
               if "==" in line}
    tests = {line.split("==")[0].lower() for line in (REPO / "requirements" / "test.lock").read_text().splitlines()
             if "==" in line}
    assert {"pytest", "playwright", "aiosmtpd", "hypothesis"} <= tests
    assert runtime & tests == set() and not runtime & {"pytest", "playwright", "aiosmtpd", "hypothesis"}
