"""Runs inside the Rasa (Python 3.10) environment: parse texts with exactly the live bot's NLU pipeline.

Usage: python bot/nlu_runner.py MODEL.tar.gz IN.csv OUT.csv
IN has a `text` column (others are kept); OUT adds predicted_intent and confidence. The
FallbackClassifier's nlu_fallback counts as out_of_scope, as it does in the bot.
"""
import asyncio
import csv
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
logging.disable(logging.WARNING)


async def main(model: str, src: str, dst: str) -> None:
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    with open(src, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    out_fields = fields + [f for f in ("predicted_intent", "confidence") if f not in fields]
    with open(dst, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=out_fields)
        writer.writeheader()
        for row in rows:
            parsed = await agent.parse_message(row.get("text") or "")
            intent = parsed.get("intent") or {}
            name = intent.get("name") or "out_of_scope"
            row["predicted_intent"] = "out_of_scope" if name == "nlu_fallback" else name
            row["confidence"] = f"{float(intent.get('confidence') or 0.0):.4f}"
            writer.writerow(row)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
