"""Language detection accuracy on realistic shopper messages: single messages and whole conversations.

Usage: bin/crossdesk bench-language [--conversations-per-language 40] [--length 8]

Data: the held-out NLU sets tests/nlu/eval_<lang>.csv (text, language, intent: messages nobody tuned the
detector on) plus tests/language/detection_eval.csv.
- single message, no context: detect_language on every message of <= 6 words that carries a language
  signal (order numbers, emails, "ok" carry none and are reported apart);
- conversations: random sequences of messages of one language (seeded), fed to LanguageMemory with no
  priors; a message counts as right when the reply language after it is the conversation's language.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import time
from collections import defaultdict
from pathlib import Path

from crm.i18n.language import SUPPORTED, LanguageMemory, detect_language

ROOT = Path(__file__).resolve().parents[1]


def load_messages() -> list[dict]:
    rows = []
    for path in sorted((ROOT / "tests" / "nlu").glob("eval_*.csv")) + [ROOT / "tests" / "language" / "detection_eval.csv"]:
        with path.open(newline="", encoding="utf-8") as fh:
            rows += [{"text": r["text"], "language": r["language"]} for r in csv.DictReader(fh)]
    return [r for r in rows if r["language"] in SUPPORTED]


def carries_language(text: str) -> bool:
    """Scored messages: anything but pure data and universal chat tokens ("CD-104233", "ok", "👍", emails).
    Decided independently of the detector, so a detector answering "no signal" cannot dodge the score."""
    from crm.i18n.language import _script_counts, _signal_words, _strip_noise

    cleaned = _strip_noise(text)
    counts = _script_counts(cleaned)
    return bool(_signal_words(cleaned)) or counts["han"] + counts["kana"] + counts["arabic"] > 0


def single_message(rows: list[dict], max_words: int = 6) -> dict:
    per_language: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # right, scored, no signal
    for row in rows:
        if len(row["text"].split()) > max_words:
            continue
        counts = per_language[row["language"]]
        if not carries_language(row["text"]):
            counts[2] += 1
            continue
        counts[1] += 1  # the detector saying "no signal" for such a message counts as wrong
        counts[0] += detect_language(row["text"]).language == row["language"]
    right = sum(c[0] for c in per_language.values())
    scored = sum(c[1] for c in per_language.values())
    return {"accuracy": round(right / scored, 4), "scored": scored,
            "no_signal": sum(c[2] for c in per_language.values()),
            "per_language": {lang: round(c[0] / c[1], 4) for lang, c in sorted(per_language.items()) if c[1]}}


def baseline_langdetect(rows: list[dict], max_words: int = 6) -> dict:
    """Plain langdetect (all 55 profiles, seeded): what you get without crossdesk's layers, same messages."""
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0
    right = scored = 0
    for row in rows:
        if len(row["text"].split()) > max_words or not carries_language(row["text"]):
            continue
        scored += 1
        try:
            best = detect_langs(row["text"])[0].lang
        except LangDetectException:
            continue
        right += {"zh-cn": "zh", "zh-tw": "zh"}.get(best, best) == row["language"]
    return {"accuracy": round(right / scored, 4), "scored": scored}


def conversations(rows: list[dict], per_language: int, length: int, seed: int = 7) -> dict:
    rng = random.Random(seed)
    by_language = defaultdict(list)
    for row in rows:
        by_language[row["language"]].append(row["text"])
    results: dict[str, list[int]] = {}
    for language, texts in sorted(by_language.items()):
        right = total = 0
        for _ in range(per_language):
            memory = LanguageMemory()
            for text in rng.sample(texts, min(length, len(texts))):
                choice = memory.observe(text)
                total += 1
                right += choice.language == language
        results[language] = [right, total]
    right = sum(r for r, _ in results.values())
    total = sum(t for _, t in results.values())
    return {"accuracy": round(right / total, 4), "messages": total,
            "per_language": {lang: round(r / t, 4) for lang, (r, t) in results.items()}}


def timing(rows: list[dict]) -> dict:
    """Cost per message of the decision the pipeline makes on every inbound message (warm model)."""
    memory = LanguageMemory()
    memory.observe("warm up")
    samples = []
    for row in rows:
        started = time.perf_counter()
        memory.observe(row["text"])
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"messages": len(samples), "mean_ms": round(statistics.fmean(samples), 3),
            "p95_ms": round(samples[int(len(samples) * 0.95)], 3)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations-per-language", type=int, default=40)
    parser.add_argument("--length", type=int, default=8)
    args = parser.parse_args(argv)
    rows = load_messages()
    result = {"messages": len(rows), "single_message_le6_words": single_message(rows),
              "conversations": conversations(rows, args.conversations_per_language, args.length),
              "cost": timing(rows), "baseline_langdetect_single": baseline_langdetect(rows)}
    s, c = result["single_message_le6_words"], result["conversations"]
    print(f"single message (<= 6 words, no context): {s['accuracy']:.3f} on {s['scored']} messages "
          f"({s['no_signal']} without any language signal not scored)")
    print("  " + "  ".join(f"{k}={v:.3f}" for k, v in s["per_language"].items()))
    print(f"  baseline, plain langdetect on the same messages: {result['baseline_langdetect_single']['accuracy']:.3f}")
    print(f"in conversations ({args.conversations_per_language} x {args.length} messages per language): "
          f"{c['accuracy']:.3f} of {c['messages']} replies in the conversation's language")
    print("  " + "  ".join(f"{k}={v:.3f}" for k, v in c["per_language"].items()))
    print(f"cost per message (choose_language, warm): mean {result['cost']['mean_ms']} ms, "
          f"p95 {result['cost']['p95_ms']} ms over {result['cost']['messages']} messages")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
