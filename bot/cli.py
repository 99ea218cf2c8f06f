"""crossdesk command line (`bin/crossdesk …`)."""
from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import typer

from bot import stack as stack_mod
from crm.config import get_settings, state_dir

app = typer.Typer(help="crossdesk: multilingual customer-service bot for cross-border shops.", no_args_is_help=True)


def _seed_if_empty(reset: bool = False) -> None:
    from sqlalchemy import func, select

    from crm.db import unit_of_work
    from crm.migrate import upgrade
    from crm.orders.models import Order
    from crm.demo import live_anchor, seed_demo_shop

    url = get_settings().database_url
    if reset:
        from crm.db import Base, get_engine, import_all_models
        from sqlalchemy import text

        import_all_models()
        Base.metadata.drop_all(get_engine())
        with get_engine().begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(url)
    with unit_of_work() as session:
        if session.scalar(select(func.count(Order.id))):
            typer.echo("crossdesk: database already has orders; not seeding (use --reset to start over)")
            return
        summary = seed_demo_shop(session, anchor=live_anchor(datetime.now(timezone.utc)))
    typer.echo(f"crossdesk: demo shop seeded: {summary}")
    _demo_staff()


def _demo_staff() -> None:
    """The demo database's staff (crm.demo.staff: one admin, two agents), with random passwords printed once
    and kept in $CROSSDESK_HOME/demo-logins.txt (0600). Nothing like this exists outside the demo seed."""
    import os

    from crm.db import unit_of_work
    from crm.demo import seed_demo_staff

    with unit_of_work() as session:
        logins = seed_demo_staff(session)
    if not logins:
        return
    lines = [f"{role:<6} {email:<28} {password}" for role, email, password in logins]
    path = state_dir() / "demo-logins.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    typer.echo("crossdesk: demo staff created (log in at /login; also in " + str(path) + "):\n  " + "\n  ".join(lines))


@app.command()
def migrate() -> None:
    """Upgrade the database (DATABASE_URL or the embedded SQLite file) to the latest schema."""
    from crm.migrate import upgrade

    upgrade(get_settings().database_url)
    typer.echo("crossdesk: database at latest schema")


@app.command()
def seed(reset: bool = typer.Option(False, help="Drop all crossdesk tables first")) -> None:
    """Create the schema and fill an empty database with the deterministic demo shop."""
    _seed_if_empty(reset)


@app.command("demo-orders")
def demo_orders(as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """The hand-made demo orders with the email/phone that owns them."""
    from crm.db import unit_of_work
    from crm.demo import demo_orders_for_readme

    with unit_of_work() as session:
        rows = demo_orders_for_readme(session)
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    for r in rows:
        typer.echo(f"{r['number']:<10} {r['status']:<11} {r['market']}  {r['email']:<32} {r.get('phone') or ''}")


@app.command()
def train() -> None:
    """Train the Rasa model if data/config/domain changed since the cached one."""
    typer.echo(str(stack_mod.ensure_model(log=lambda m: typer.echo(m, err=True))))


@app.command()
def up(port: int = typer.Option(8000, help="App port"), rasa_port: int = typer.Option(5005),
       actions_port: int = typer.Option(5055)) -> None:
    """Set up what is missing and run Rasa, the action server and the app until Ctrl-C."""
    settings = get_settings()
    _seed_if_empty()
    model = stack_mod.ensure_model(log=lambda m: typer.echo(m, err=True))
    stack = stack_mod.Stack(model=model, state_dir=state_dir(), database_url=settings.database_url,
                            redis_url=settings.redis_url, rasa_port=rasa_port, actions_port=actions_port,
                            app_port=port)
    typer.echo("crossdesk: starting Rasa, actions and app (Rasa takes ~30 s to load) ...")
    try:
        stack.start()
        store = "PostgreSQL" if settings.database_url.startswith("postgresql") else "SQLite"
        typer.echo(f"\ncrossdesk is running ({store}{', Redis' if settings.redis_url else ''}).\n"
                   f"  Chat in the terminal:  bin/crossdesk chat --url {stack.app_url}\n"
                   f"  REST channel:          POST {stack.app_url}/webhooks/rest/webhook\n"
                   f"  Staff login:           {stack.app_url}/login  (demo logins: {state_dir() / 'demo-logins.txt'})\n"
                   f"  API docs:              {stack.app_url}/docs\n"
                   f"  Demo orders:           bin/crossdesk demo-orders\n  Logs: {state_dir() / 'logs'}\n"
                   "Press Ctrl-C to stop.")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(p.poll() is None for p in stack.procs.values()):
            time.sleep(1)
        typer.echo("crossdesk: a process exited; stopping (see logs)", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


@app.command()
def chat(url: str = typer.Option("http://127.0.0.1:8000", help="App URL"),
         sender: str = typer.Option("", help="Sender id (default: a new one)")) -> None:
    """Chat with the running stack in the terminal. Buttons show as numbers; type the number to press one."""
    sender = sender or f"cli-{uuid.uuid4().hex[:8]}"
    buttons: list[dict] = []
    typer.echo(f"Chatting as {sender}. Ctrl-D to quit.")
    with httpx.Client(timeout=60) as client:
        while True:
            try:
                text = input("you> ")
            except (EOFError, KeyboardInterrupt):
                typer.echo()
                return
            if text.strip().isdigit() and 1 <= int(text) <= len(buttons):
                text = buttons[int(text) - 1]["payload"]
            resp = client.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text})
            if resp.status_code != 200:
                typer.echo(f"[{resp.status_code}] {resp.json().get('error', resp.text)}")
                continue
            buttons = []
            for msg in resp.json():
                typer.echo(f"bot> {msg.get('text', '')}")
                for b in msg.get("buttons") or []:
                    buttons.append(b)
                    typer.echo(f"     {len(buttons)}. {b['title']}")


def _predict(src: Path, dst: Path) -> None:
    model = stack_mod.ensure_model(log=lambda m: typer.echo(m, err=True))
    result = subprocess.run([stack_mod.rasa_python(), str(stack_mod.ROOT / "bot" / "nlu_runner.py"), str(model),
                             str(src), str(dst)], env=stack_mod._rasa_env(), capture_output=True, text=True)
    if result.returncode != 0:  # Rasa logs are noise unless something failed
        typer.echo(result.stdout[-4000:] + result.stderr[-4000:], err=True)
        raise typer.Exit(result.returncode)


@app.command("nlu-predict")
def nlu_predict(src: Path, dst: Path) -> None:
    """IN.csv (text,language,intent) → OUT.csv with predicted_intent,confidence from the live NLU pipeline."""
    _predict(src, dst)


@app.command("nlu-eval")
def nlu_eval(src: list[Path]) -> None:
    """Accuracy and macro-F1 overall, per language and per intent, of one or more text,language,intent CSVs
    (e.g. tests/nlu/eval_*.csv); the last line is one JSON object."""
    import csv

    from bot.nlu_eval import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        merged, out = Path(tmp) / "eval.csv", Path(tmp) / "pred.csv"
        with merged.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["text", "language", "intent"])
            writer.writeheader()
            for path in src:
                with path.open(newline="", encoding="utf-8") as rows:
                    writer.writerows({k: r.get(k, "") for k in ("text", "language", "intent")}
                                     for r in csv.DictReader(rows))
        _predict(merged, out)
        result = evaluate(out)
    o = result["overall"]
    typer.echo(f"overall: n={o['n']} accuracy={o['accuracy']} macro_f1={o['macro_f1']}")
    for lang, s in result["per_language"].items():
        typer.echo(f"  {lang}: n={s['n']} accuracy={s['accuracy']} macro_f1={s['macro_f1']}")
    for intent, s in result["per_intent"].items():
        typer.echo(f"  {intent:<25} n={s['n']:<4} recall={s['recall']:.3f} f1={s['f1']:.3f}")
    if result["not_scored_unknown_intents"]:
        typer.echo(f"not scored (intents the model does not have): {result['not_scored_unknown_intents']}")
    typer.echo(json.dumps(result))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context) -> None:
    """Benchmark the full stack against bare Rasa (options: see bench/load.py and bench/run.py)."""
    from bench.run import main

    main(ctx.args)


@app.command("bench-whatsapp", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_whatsapp(ctx: typer.Context) -> None:
    """Benchmark signed WhatsApp webhook ingestion (options: see bench/whatsapp_ingest.py)."""
    from bench.whatsapp_ingest import main

    main(ctx.args)


@app.command("bench-channels", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_channels(ctx: typer.Context) -> None:
    """End-to-end reply latency per channel (options: see bench/channel_latency.py)."""
    from bench.channel_latency import main

    main(ctx.args)


@app.command("bench-language", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_language(ctx: typer.Context) -> None:
    """Language detection accuracy: single short messages and whole conversations (see bench/language_detection.py)."""
    from bench.language_detection import main

    main(ctx.args)


translate = typer.Typer(help="Offline machine translation: argostranslate packages under <state dir>/translation.",
                        no_args_is_help=True)
app.add_typer(translate, name="translate")


@translate.command("install")
def translate_install(files: list[Path] = typer.Argument(..., help=".argosmodel package files")) -> None:
    """Install translation packages (offline) and print the language pairs now available."""
    from crm.i18n.translation import PackageError, install, installed_pairs

    try:
        for pair in install(files):
            typer.echo(f"installed {pair}")
    except PackageError as exc:
        typer.echo(f"crossdesk: {exc}", err=True)
        raise typer.Exit(1)
    typer.echo("pairs: " + ", ".join(f"{a}-{b}" for a, b in sorted(installed_pairs())))


@translate.command("list")
def translate_list() -> None:
    """Installed translation pairs."""
    from crm.i18n.translation import installed_pairs

    pairs = sorted(installed_pairs())
    if not pairs:
        typer.echo("no translation packages installed (bin/crossdesk translate install FILE.argosmodel)")
    for a, b in pairs:
        typer.echo(f"{a}-{b}")


@translate.command("text")
def translate_text(text: str, source: str = typer.Option(..., "--source", "-s"),
                   target: str = typer.Option(..., "--target", "-t")) -> None:
    """Translate TEXT; exits 1 (printing the original and the reason) if it cannot."""
    from crm.i18n.translation import translate as run

    result = run(text, source, target)
    typer.echo(result.text)
    if not result.ok:
        typer.echo(f"crossdesk: not translated: {result.reason}", err=True)
        raise typer.Exit(1)


if __name__ == "__main__":
    app()


user = typer.Typer(help="Staff accounts: admins, agents, marketers.", no_args_is_help=True)
app.add_typer(user, name="user")


def _ask_password(password: str | None) -> str:
    if password:
        return password
    first = typer.prompt("Password (12+ characters)", hide_input=True)
    if typer.prompt("Again", hide_input=True) != first:
        typer.echo("the passwords differ", err=True)
        raise typer.Exit(2)
    return first


@user.command("add")
def user_add(email: str, name: str = typer.Option(..., help="Full name"),
             role: str = typer.Option(..., help="admin | agent | marketer"),
             languages: str = typer.Option("", help="Languages spoken, comma-separated (e.g. en,de)"),
             password: str = typer.Option(None, help="Prompted for when not given (preferred: keeps it out of "
                                                     "the shell history)")) -> None:
    """Add a staff user."""
    from crm.audit.service import Actor
    from crm.db import unit_of_work
    from crm.migrate import upgrade
    from crm.staff import service as staff

    upgrade(get_settings().database_url)
    secret = _ask_password(password)
    try:
        with unit_of_work() as session:
            created = staff.add_user(session, Actor.cli(), email, name, role, secret,
                                     [c for c in languages.split(",") if c.strip()])
            typer.echo(f"crossdesk: added {created.role} {created.email} (id {created.id})")
    except staff.StaffError as exc:
        typer.echo(f"crossdesk: {exc}", err=True)
        raise typer.Exit(2) from None


@user.command("list")
def user_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List staff users."""
    from crm.db import unit_of_work
    from crm.staff import service as staff
    from crm.staff.views import user_view

    with unit_of_work() as session:
        rows = [user_view(u) for u in staff.list_users(session)]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        state = "disabled" if r["disabled"] else r["presence"]
        typer.echo(f"{r['id']:>4}  {r['role']:<8} {r['email']:<32} {r['name']:<24} {','.join(r['languages']):<12} {state}")


@user.command("disable")
def user_disable(email: str) -> None:
    """Disable a staff user: their console sessions end and their API tokens stop working at once."""
    from crm.audit.service import Actor
    from crm.db import unit_of_work, utcnow
    from crm.staff import service as staff

    with unit_of_work() as session:
        found = staff.find_user(session, email)
        if found is None:
            typer.echo(f"crossdesk: no staff user {email}", err=True)
            raise typer.Exit(2)
        staff.disable_user(session, Actor.cli(), found, utcnow())
    typer.echo(f"crossdesk: disabled {email}")


@user.command("token")
def user_token(email: str, name: str = typer.Option("integration", help="What the token is for"),
               role: str = typer.Option(None, help="Scope: the user's role (default) or a lesser one"),
               revoke: int = typer.Option(None, help="Revoke the token with this id instead")) -> None:
    """Create an API token for a staff user (printed once; only its hash is kept), or revoke one."""
    from crm.audit.service import Actor
    from crm.db import unit_of_work, utcnow
    from crm.staff import service as staff

    try:
        with unit_of_work() as session:
            if revoke is not None:
                staff.revoke_token(session, Actor.cli(), revoke, utcnow())
                typer.echo(f"crossdesk: revoked token {revoke}")
                return
            found = staff.find_user(session, email)
            if found is None:
                typer.echo(f"crossdesk: no staff user {email}", err=True)
                raise typer.Exit(2)
            row, secret = staff.create_token(session, Actor.cli(), found, name, role)
            typer.echo(f"crossdesk: token {row.id} ({row.role}) for {found.email} — shown only now:")
            typer.echo(secret)
    except staff.StaffError as exc:
        typer.echo(f"crossdesk: {exc}", err=True)
        raise typer.Exit(2) from None
