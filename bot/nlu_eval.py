"""Scores predictions: accuracy and macro-F1 overall, per language and per intent."""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import yaml

from bot.stack import ROOT


def model_intents() -> set[str]:
    domain = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text(encoding="utf-8"))
    return set(domain["intents"])


def f1_scores(pairs: list[tuple[str, str]]) -> dict[str, float]:
    labels = {gold for gold, _ in pairs}
    scores = {}
    for label in sorted(labels):
        tp = sum(1 for g, p in pairs if g == label and p == label)
        fp = sum(1 for g, p in pairs if g != label and p == label)
        fn = sum(1 for g, p in pairs if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores[label] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return scores


def summary(pairs: list[tuple[str, str]]) -> dict:
    if not pairs:
        return {"n": 0, "accuracy": None, "macro_f1": None}
    f1 = f1_scores(pairs)
    return {"n": len(pairs), "accuracy": round(sum(g == p for g, p in pairs) / len(pairs), 4),
            "macro_f1": round(sum(f1.values()) / len(f1), 4)}


def evaluate(predictions: Path) -> dict:
    known = model_intents()
    scored, unknown = [], defaultdict(int)
    with predictions.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["intent"] not in known:
                unknown[row["intent"]] += 1
                continue
            scored.append(row)
    pairs = [(r["intent"], r["predicted_intent"]) for r in scored]
    by_language = defaultdict(list)
    for r in scored:
        by_language[r.get("language") or "?"].append((r["intent"], r["predicted_intent"]))
    per_intent = {}
    f1 = f1_scores(pairs)
    for intent in sorted({g for g, _ in pairs}):
        gold = [(g, p) for g, p in pairs if g == intent]
        per_intent[intent] = {"n": len(gold), "recall": round(sum(g == p for g, p in gold) / len(gold), 4),
                              "f1": round(f1[intent], 4)}
    return {"overall": summary(pairs), "per_language": {k: summary(v) for k, v in sorted(by_language.items())},
            "per_intent": per_intent, "not_scored_unknown_intents": dict(unknown)}
