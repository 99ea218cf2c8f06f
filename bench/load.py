"""Load generator for crossdesk: full stack (app) vs. bare Rasa.

What it does
------------
Replays the same set of scripted shopper conversations

* through the app's REST channel (``POST {app_url}/webhooks/rest/webhook``), which
  forwards every message to Rasa, and
* directly against Rasa's own REST channel (``POST {rasa_url}/webhooks/rest/webhook``),
  same model, same action server,

and prints, per run: throughput (turns/s), p50/p95/p99 latency (ms), error count
(with reasons), and for the long (50-turn) conversations the mean latency at turn 5
and at turn 50 and their ratio.  It then prints the full-stack/bare ratios for p50
and p95.  The last line of stdout is a single JSON object with every figure.

Run order (sequential, not interleaved)
---------------------------------------
1. ``app``   -- the short conversations through the app, ``--senders`` at a time,
2. ``rasa``  -- the same conversations against bare Rasa,
3. ``app2``  -- the app again,
4. ``app_long`` / ``rasa_long`` -- the long conversations, all of them concurrently, so turn 5 and
   turn 50 are measured under the same load (mixing them into the short run would compare a busy
   start with a drained end).

Both app runs are reported so order effects (cold caches, tracker-store growth,
JIT/warm-up, DB autovacuum...) are visible; the full-stack/bare ratios are given
against both app runs (``ratios.app_vs_rasa`` and ``ratios.app2_vs_rasa``).
Before each run ``--warmup`` single "hi" turns (own throw-away senders) are sent to
that target and not counted.

Conversations
-------------
``--conversations`` is the total per run *including* the ``--long-conversations``
ones (50 turns each, cycling varied messages, never a handoff because a handoff
pauses the bot).  The rest is a weighted mix of short scripts: order status
(greet -> "where is my order" -> order number -> email -> thanks), return request,
refund status, cancellation, talk to a human, out-of-scope chit-chat.  Order
numbers / e-mails / phones come from ``--orders-json`` (a JSON list of
``{"order_number", "email", "phone"}`` of real demo orders -> verified flows);
without it, made-up numbers such as CD-999001 are used (-> "not found" replies).
The script set is generated once from ``--seed`` and replayed identically on every
run.

``--senders`` concurrent senders each take whole conversations from a shared
queue and play them turn by turn, waiting for each reply before the next turn.
Sender ids are ``bench-<run uuid>-<conversation index>`` with a fresh uuid per run,
so trackers never collide between targets or between runs.

Errors: any non-200 answer, any exception (timeout 30 s per request), or a 200
whose body is not a JSON list is counted as an error with its reason; failed turns
are left out of the latency figures and the conversation carries on.

Only httpx + the standard library are needed (Python 3.11).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

WEBHOOK_PATH = "/webhooks/rest/webhook"
REQUEST_TIMEOUT_S = 30.0
LONG_CONVERSATION_TURNS = 50
LONG_PROBE_TURNS = (5, 50)  # 1-based turn numbers compared in long conversations

# --------------------------------------------------------------------------- scripts

MADE_UP_ORDERS = [
    {
        "order_number": f"CD-{999001 + i}",
        "email": f"nobody{i}@example.invalid",
        "phone": f"+1 555 010 {i:04d}",
    }
    for i in range(50)
]

GREETINGS = ["hi", "hello", "hey there", "good morning", "hi!"]
THANKS = ["thanks", "thank you!", "great, thanks", "ok thank you", "cheers"]


def _order_status(rng: random.Random, o: dict[str, str]) -> list[str]:
    return [
        rng.choice(GREETINGS),
        rng.choice(["where is my order", "where is my package?", "can you track my order"]),
        o["order_number"],
        o["email"],
        rng.choice(THANKS),
    ]


def _return_request(rng: random.Random, o: dict[str, str]) -> list[str]:
    return [
        rng.choice(GREETINGS),
        rng.choice(["I want to return an item", "how do I return something", "I'd like to send my order back"]),
        o["order_number"],
        o["email"],
        rng.choice(["it arrived damaged", "wrong size", "I changed my mind"]),
        rng.choice(THANKS),
    ]


def _refund_status(rng: random.Random, o: dict[str, str]) -> list[str]:
    return [
        rng.choice(GREETINGS),
        rng.choice(["what's the status of my refund", "where is my refund?", "did you refund me yet"]),
        o["order_number"],
        o["phone"] if rng.random() < 0.5 else o["email"],
        rng.choice(THANKS),
    ]


def _cancel(rng: random.Random, o: dict[str, str]) -> list[str]:
    return [
        rng.choice(GREETINGS),
        rng.choice(["I need to cancel my order", "please cancel my order", "cancel order"]),
        o["order_number"],
        o["email"],
        "yes",
        rng.choice(["thanks, bye", "bye"]),
    ]


def _human(rng: random.Random, o: dict[str, str]) -> list[str]:
    # The handoff is the last turn on purpose: it pauses the bot for this sender.
    return [
        rng.choice(GREETINGS),
        rng.choice(["where is my order", "I have a problem with my order"]),
        o["order_number"],
        rng.choice(["I want to talk to a human", "let me speak to an agent", "real person please"]),
    ]


def _chitchat(rng: random.Random, o: dict[str, str]) -> list[str]:
    return [
        rng.choice(GREETINGS),
        rng.choice(["what's the weather like today", "tell me a joke", "who won the game last night"]),
        rng.choice(["are you a bot?", "what's your name", "do you like pizza"]),
        rng.choice(["what is the meaning of life", "can you book me a flight"]),
        "bye",
    ]


SHORT_SCRIPTS = [  # (name, weight, builder)
    ("order_status", 35, _order_status),
    ("return", 15, _return_request),
    ("refund_status", 15, _refund_status),
    ("cancel", 10, _cancel),
    ("human", 10, _human),
    ("chitchat", 15, _chitchat),
]


def _long(rng: random.Random, orders: list[dict[str, str]]) -> list[str]:
    """50 turns: ten identical 5-turn blocks, each about a different order (verify, track, chat).

    Every block does the same work, so turn 5 and turn 50 (and turns 1-5 vs 46-50) differ only in how
    long the conversation already is — that is what the long-conversation figures are meant to show.
    """
    picks = rng.sample(orders, k=min(len(orders), LONG_CONVERSATION_TURNS // 5))
    turns: list[str] = []
    i = 0
    while len(turns) < LONG_CONVERSATION_TURNS:
        o = picks[i % len(picks)]
        turns += [f"where is my order {o['order_number']}", o["email"], rng.choice(THANKS), "are you a bot?",
                  "bye"]
        i += 1
    return turns[:LONG_CONVERSATION_TURNS]


@dataclass
class Conversation:
    index: int
    kind: str
    turns: list[str]

    @property
    def is_long(self) -> bool:
        return self.kind == "long"


def build_conversations(
    total: int, n_long: int, orders: list[dict[str, str]], seed: int
) -> list[Conversation]:
    rng = random.Random(seed)
    n_long = max(0, min(n_long, total))
    kinds: list[str] = ["long"] * n_long
    names = [s[0] for s in SHORT_SCRIPTS]
    weights = [s[1] for s in SHORT_SCRIPTS]
    kinds += rng.choices(names, weights=weights, k=total - n_long)
    rng.shuffle(kinds)  # spread long conversations over the run
    builders = {s[0]: s[2] for s in SHORT_SCRIPTS}
    convs = []
    for i, kind in enumerate(kinds):
        if kind == "long":
            turns = _long(rng, orders)
        else:
            turns = builders[kind](rng, rng.choice(orders))
        convs.append(Conversation(i, kind, turns))
    return convs


def load_orders(path: str | None) -> tuple[list[dict[str, str]], bool]:
    """Return (orders, verified).  Falls back to made-up orders if absent/invalid."""
    if not path:
        return MADE_UP_ORDERS, False
    p = Path(path)
    if not p.is_file():
        print(f"warning: --orders-json {path} not found; using made-up orders", file=sys.stderr)
        return MADE_UP_ORDERS, False
    data = json.loads(p.read_text(encoding="utf-8"))
    orders = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict) and item.get("order_number"):
            orders.append(
                {
                    "order_number": str(item["order_number"]),
                    "email": str(item.get("email") or "unknown@example.invalid"),
                    "phone": str(item.get("phone") or "+1 555 0100"),
                }
            )
    if not orders:
        print(f"warning: no usable orders in {path}; using made-up orders", file=sys.stderr)
        return MADE_UP_ORDERS, False
    return orders, True


# --------------------------------------------------------------------------- stats


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), like numpy's default."""
    if not values:
        return None
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


# --------------------------------------------------------------------------- runner


@dataclass
class RunResult:
    label: str
    target: str
    sender_prefix: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    empty_replies: int = 0
    turns_attempted: int = 0
    # long conversations: 1-based turn number -> latencies (ms) of ok turns
    long_turn_ms: dict[int, list[float]] = field(default_factory=dict)
    elapsed_s: float = 0.0
    warmup_errors: int = 0

    def summary(self) -> dict[str, Any]:
        ok = len(self.latencies_ms)
        t5, t50 = LONG_PROBE_TURNS
        m5 = mean(self.long_turn_ms.get(t5, []))
        m50 = mean(self.long_turn_ms.get(t50, []))
        return {
            "label": self.label,
            "url": self.target,
            "sender_prefix": self.sender_prefix,
            "turns_attempted": self.turns_attempted,
            "turns_ok": ok,
            "errors": sum(self.errors.values()),
            "error_reasons": dict(self.errors.most_common()),
            "empty_replies": self.empty_replies,
            "elapsed_s": _r(self.elapsed_s, 3),
            "throughput_turns_per_s": _r(ok / self.elapsed_s if self.elapsed_s > 0 else None),
            "latency_ms": {
                "mean": _r(mean(self.latencies_ms)),
                "p50": _r(percentile(self.latencies_ms, 50)),
                "p95": _r(percentile(self.latencies_ms, 95)),
                "p99": _r(percentile(self.latencies_ms, 99)),
                "max": _r(max(self.latencies_ms) if self.latencies_ms else None),
            },
            "long": {
                f"turn{t5}_mean_ms": _r(m5),
                f"turn{t50}_mean_ms": _r(m50),
                f"turn{t50}_over_turn{t5}": _r(ratio(m50, m5), 3),
                f"turn{t5}_n": len(self.long_turn_ms.get(t5, [])),
                f"turn{t50}_n": len(self.long_turn_ms.get(t50, [])),
                # less noisy companions: mean over turns 1-5 and 46-50
                "first5_mean_ms": _r(mean([v for t in range(1, 6) for v in self.long_turn_ms.get(t, [])])),
                "last5_mean_ms": _r(
                    mean([v for t in range(46, 51) for v in self.long_turn_ms.get(t, [])])
                ),
            },
            "warmup_errors": self.warmup_errors,
        }


async def send_turn(
    client: httpx.AsyncClient, url: str, sender: str, text: str
) -> tuple[float, str | None, bool]:
    """Return (latency_ms, error_reason or None, empty_reply)."""
    payload = {"sender": sender, "message": text, "metadata": {}}
    t0 = time.perf_counter()
    try:
        resp = await client.post(url, json=payload)
        latency = (time.perf_counter() - t0) * 1000.0
    except httpx.TimeoutException as exc:
        return (time.perf_counter() - t0) * 1000.0, f"timeout:{type(exc).__name__}", False
    except Exception as exc:  # noqa: BLE001 - never crash on one request
        return (time.perf_counter() - t0) * 1000.0, f"exception:{type(exc).__name__}", False
    if resp.status_code != 200:
        return latency, f"http_{resp.status_code}", False
    try:
        body = resp.json()
    except ValueError:
        return latency, "bad_body:not_json", False
    if not isinstance(body, list):
        return latency, "bad_body:not_a_list", False
    return latency, None, len(body) == 0


async def run_target(
    label: str,
    base_url: str,
    conversations: list[Conversation],
    senders: int,
    warmup: int,
) -> RunResult:
    url = base_url.rstrip("/") + WEBHOOK_PATH
    prefix = f"bench-{uuid.uuid4().hex[:12]}"
    result = RunResult(label=label, target=url, sender_prefix=prefix)
    limits = httpx.Limits(max_connections=senders + 4, max_keepalive_connections=senders + 4)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        for i in range(warmup):
            _, err, _ = await send_turn(client, url, f"{prefix}-warmup-{i}", "hi")
            if err:
                result.warmup_errors += 1

        queue: asyncio.Queue[Conversation] = asyncio.Queue()
        for c in conversations:
            queue.put_nowait(c)

        async def worker() -> None:
            while True:
                try:
                    conv = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                sender = f"{prefix}-{conv.index}"
                for turn_no, text in enumerate(conv.turns, start=1):
                    result.turns_attempted += 1
                    latency, err, empty = await send_turn(client, url, sender, text)
                    if err:
                        result.errors[err] += 1
                        continue
                    result.latencies_ms.append(latency)
                    if empty:
                        result.empty_replies += 1
                    if conv.is_long:
                        result.long_turn_ms.setdefault(turn_no, []).append(latency)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(max(1, senders))))
        result.elapsed_s = time.perf_counter() - t0
    return result


def print_summary(s: dict[str, Any]) -> None:
    lat = s["latency_ms"]
    lg = s["long"]
    t5, t50 = LONG_PROBE_TURNS
    print(f"== {s['label']:5s} {s['url']}")
    print(
        f"   turns ok {s['turns_ok']}/{s['turns_attempted']}  errors {s['errors']}"
        f"  empty replies {s['empty_replies']}  elapsed {s['elapsed_s']} s"
        f"  throughput {s['throughput_turns_per_s']} turns/s"
    )
    print(f"   latency ms  p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  max {lat['max']}")
    print(
        f"   long convs  turn {t5} {lg[f'turn{t5}_mean_ms']} ms (n={lg[f'turn{t5}_n']})"
        f"  turn {t50} {lg[f'turn{t50}_mean_ms']} ms (n={lg[f'turn{t50}_n']})"
        f"  ratio {lg[f'turn{t50}_over_turn{t5}']}"
    )
    if s["error_reasons"]:
        print(f"   error reasons {s['error_reasons']}")


def compare(full: dict[str, Any], bare: dict[str, Any]) -> dict[str, Any]:
    return {
        "p50_full_over_bare": _r(ratio(full["latency_ms"]["p50"], bare["latency_ms"]["p50"]), 3),
        "p95_full_over_bare": _r(ratio(full["latency_ms"]["p95"], bare["latency_ms"]["p95"]), 3),
        "p99_full_over_bare": _r(ratio(full["latency_ms"]["p99"], bare["latency_ms"]["p99"]), 3),
        "throughput_full_over_bare": _r(
            ratio(full["throughput_turns_per_s"], bare["throughput_turns_per_s"]), 3
        ),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--app-url", default="http://localhost:8000", help="crossdesk app base URL")
    p.add_argument("--rasa-url", default="http://localhost:5005", help="bare Rasa base URL")
    p.add_argument("--senders", type=int, default=20, help="concurrent senders")
    p.add_argument("--conversations", type=int, default=100, help="conversations per run (incl. long ones)")
    p.add_argument("--long-conversations", type=int, default=10, help="of which 50-turn conversations")
    p.add_argument("--orders-json", default=None, help="JSON list of {order_number,email,phone} demo orders")
    p.add_argument("--warmup", type=int, default=10, help="uncounted 'hi' turns per run before measuring")
    p.add_argument("--seed", type=int, default=1234, help="seed for the conversation scripts")
    p.add_argument("--long-rounds", type=int, default=1,
                   help="repeat the long-conversation phase this many times per target (alternating) and pool the turns")
    p.add_argument("--json-out", default=None, help="also write the result JSON to this file")
    args = p.parse_args(argv)
    for name in ("senders", "conversations", "long_conversations", "warmup"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.senders < 1:
        p.error("--senders must be >= 1")
    return args


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    orders, verified = load_orders(args.orders_json)
    convs = build_conversations(args.conversations, args.long_conversations, orders, args.seed)
    short = [c for c in convs if not c.is_long]
    long_convs = [c for c in convs if c.is_long]
    mix = Counter(c.kind for c in convs)
    print(
        f"{len(short)} short conversations ({sum(len(c.turns) for c in short)} turns), mix {dict(mix)}, "
        f"{'verified' if verified else 'made-up'} orders, {args.senders} senders; order: app, rasa, app2; "
        f"then {len(long_convs)} long conversations all at once against app and rasa",
        flush=True,
    )
    runs: dict[str, dict[str, Any]] = {}
    for label, url in (("app", args.app_url), ("rasa", args.rasa_url), ("app2", args.app_url)):
        res = await run_target(label, url, short, args.senders, args.warmup)
        runs[label] = res.summary()
        print_summary(runs[label])
        sys.stdout.flush()
    # Long conversations in their own phase, every one concurrently, so turn 5 and turn 50 are measured
    # under the same load and their ratio shows only the effect of a growing conversation.
    pooled: dict[str, RunResult] = {}
    for _round in range(max(1, args.long_rounds) if long_convs else 0):
        for label, url in (("app_long", args.app_url), ("rasa_long", args.rasa_url)):
            res = await run_target(label, url, long_convs, len(long_convs), 0)
            if label in pooled:  # pool rounds: more samples per turn number, same load per round
                acc = pooled[label]
                acc.latencies_ms += res.latencies_ms
                acc.errors.update(res.errors)
                acc.empty_replies += res.empty_replies
                acc.turns_attempted += res.turns_attempted
                acc.elapsed_s += res.elapsed_s
                for turn_no, values in res.long_turn_ms.items():
                    acc.long_turn_ms.setdefault(turn_no, []).extend(values)
            else:
                pooled[label] = res
    for label, res in pooled.items():
        runs[label] = res.summary()
        print_summary(runs[label])
        sys.stdout.flush()
    ratios = {
        "app_vs_rasa": compare(runs["app"], runs["rasa"]),
        "app2_vs_rasa": compare(runs["app2"], runs["rasa"]),
    }
    if "app_long" in runs:
        ratios["app_long_vs_rasa_long"] = compare(runs["app_long"], runs["rasa_long"])
    for key, r in ratios.items():
        print(f"== {key}: p50 x{r['p50_full_over_bare']}  p95 x{r['p95_full_over_bare']}")
    return {
        "config": {
            "app_url": args.app_url,
            "rasa_url": args.rasa_url,
            "senders": args.senders,
            "conversations": len(convs),
            "long_conversations": mix.get("long", 0),
            "long_conversation_turns": LONG_CONVERSATION_TURNS,
            "short_turns_per_run": sum(len(c.turns) for c in short),
            "mix": dict(mix),
            "verified_orders": verified,
            "warmup": args.warmup,
            "seed": args.seed,
            "long_rounds": args.long_rounds,
            "timeout_s": REQUEST_TIMEOUT_S,
            "order": list(runs),
        },
        "runs": runs,
        "ratios": ratios,
        "errors_total": sum(r["errors"] for r in runs.values()),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(main_async(args))
    line = json.dumps(result, sort_keys=False)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
