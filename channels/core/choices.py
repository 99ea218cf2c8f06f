"""Answering numbered options by typing: the one resolver for every channel.

Where buttons cannot be tapped (email; WhatsApp lists beyond its button limits; a shopper who types anyway),
the options are shown numbered, and "2", "2.", "#2", "(2)", "no. 2", "nº 2" — or the exact title of an
option — in the first line of the answer picks it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from channels.core.messages import Button

_CHOICE = re.compile(r"^\s*[#(]?\s*(?:no\.?\s*|nr\.?\s*|n[º°o]\.?\s*)?(\d{1,3})\s*[.):]?\s*$", re.I)


def _payload(button: Button | dict) -> str | None:
    payload = button.payload if isinstance(button, Button) else (button or {}).get("payload")
    return payload if isinstance(payload, str) and payload else None


def _title(button: Button | dict) -> str:
    return str(button.title if isinstance(button, Button) else (button or {}).get("title") or "")


def resolve_numbered_choice(text: str, last_buttons: Iterable[Button | dict] | None) -> str | None:
    """The payload of the option the answer picks, or None (then the text goes to the bot as it is)."""
    buttons = list(last_buttons or [])
    if not buttons:
        return None
    first = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    match = _CHOICE.match(first)
    if match:
        index = int(match.group(1))
        return _payload(buttons[index - 1]) if 1 <= index <= len(buttons) else None
    folded = first.casefold().rstrip(".!")
    for button in buttons:
        if folded and _title(button).strip().casefold() == folded:
            return _payload(button)
    return None
