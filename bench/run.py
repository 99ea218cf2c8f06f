"""Start a full crossdesk stack on a freshly seeded database and run bench/load.py against the app and
against bare Rasa: a second, unmodified Rasa server (default in-memory tracker and lock stores) with the
same model and the same action server and database.

    bin/crossdesk bench [--senders 20 --conversations 100 --long-conversations 10]
                        [--database-url URL --redis-url URL] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from bench import load
from bot.stack import Stack, ensure_model


def seed(url: str) -> list[dict]:
    from sqlalchemy.orm import Session

    from crm.db import make_engine
    from crm.migrate import upgrade
    from crm.demo import demo_orders_for_readme, live_anchor, seed_demo_shop

    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        seed_demo_shop(session, anchor=live_anchor(datetime.now(timezone.utc)))
        session.commit()
        orders = demo_orders_for_readme(session)
    engine.dispose()
    return [{"order_number": o["number"], "email": o["email"], "phone": o["phone"]} for o in orders]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--redis-url", default=None)
    known, rest = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory(prefix="crossdesk-bench-") as tmp:
        state = Path(tmp)
        url = known.database_url or f"sqlite:///{state}/bench.db"
        orders_file = state / "orders.json"
        orders_file.write_text(json.dumps(seed(url)))
        stack = Stack(model=ensure_model(log=lambda m: print(m, file=sys.stderr)), state_dir=state,
                      database_url=url, redis_url=known.redis_url,
                      # a 50-turn bench conversation outpaces a human; keep the limiter on the path, not in the way
                      extra_env={"CROSSDESK_SENDER_RATE_LIMIT": "1000000"})
        try:
            stack.start()
            bare_rasa_url = stack.start_bare_rasa()
            args = load.parse_args(["--app-url", stack.app_url, "--rasa-url", bare_rasa_url,
                                    "--orders-json", str(orders_file), *rest])
            result = asyncio.run(load.main_async(args))
        finally:
            stack.stop()
    result["environment"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "database": "postgresql" if url.startswith("postgresql") else "sqlite",
                             "redis": bool(known.redis_url)}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
