"""The one normalized message shape every channel converts to and from."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Control characters other than newline/tab carry no meaning in chat and break some terminals/DBs.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028\u2029\ufeff]")


def clean_text(text: str) -> str:
    return _CONTROL.sub("", unicodedata.normalize("NFC", text)).strip()


@dataclass(frozen=True)
class InboundMessage:
    channel: str  # rest | whatsapp | web | email
    sender_id: str  # the channel's own id for the shopper (phone, session id, address)
    text: str
    received_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None  # provider message id, for de-duplication
    client: str | None = None  # set by the edge from the connection (e.g. "ip:203.0.113.7"), never by the client


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class OutboundMessage:
    text: str
    buttons: tuple[Button, ...] = ()
    custom: dict[str, Any] | None = None
    author: str = "bot"  # bot | agent | system

    @classmethod
    def from_rasa(cls, data: dict[str, Any]) -> OutboundMessage:
        buttons = tuple(Button(str(b.get("title", "")), str(b.get("payload", ""))) for b in data.get("buttons") or [])
        return cls(text=data.get("text") or "", buttons=buttons, custom=data.get("custom"))

    @classmethod
    def from_record(cls, text: str, payload: dict[str, Any], author: str) -> OutboundMessage:
        """The message a stored outbound row holds (the inverse of `as_payload`)."""
        return cls.from_rasa({"text": text, **payload}).with_author(author)

    def with_author(self, author: str) -> OutboundMessage:
        return OutboundMessage(self.text, self.buttons, self.custom, author)

    def as_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        if self.buttons:
            payload["buttons"] = [{"title": b.title, "payload": b.payload} for b in self.buttons]
        if self.custom is not None:
            payload["custom"] = self.custom
        return payload
