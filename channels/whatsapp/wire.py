"""WhatsApp Cloud API wire format: webhook verification and parsing, outbound payload builders, error kinds.

Pure functions only (no I/O), so every rule about Meta's format is testable on its own:
- inbound: `verify_signature`, `verify_handshake`, `parse_webhook` → `WebhookBatch` of `InboundMessage`s and
  `StatusUpdate`s (malformed items are skipped and counted, never raised);
- outbound: `build_payloads` turns one `OutboundMessage` into the Graph API bodies that respect Meta's limits
  (text ≤ 4,096 chars; ≤ 3 reply buttons; lists of ≤ 10 rows; numbered text beyond that), `build_template`;
- `classify_error` maps a Graph API error response to what the sender should do about it.
"""
from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from channels.core.messages import Button, InboundMessage, OutboundMessage, clean_text
from crm.contacts import normalize_phone

CHANNEL = "whatsapp"

# Meta's documented limits (Messages API: text, interactive reply buttons, interactive list messages).
TEXT_MAX = 4096
INTERACTIVE_BODY_MAX = 1024
REPLY_BUTTONS_MAX = 3
REPLY_TITLE_MAX = 20
REPLY_ID_MAX = 256
LIST_ROWS_MAX = 10
LIST_ROW_TITLE_MAX = 24
LIST_ROW_DESCRIPTION_MAX = 72
LIST_ROW_ID_MAX = 200
LIST_BUTTON_MAX = 20
DEFAULT_LIST_BUTTON = "Options"
# Body of an interactive message whose text had to go out as text messages first: language neutral.
SHORT_BODY = "👇"

MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")
STATUSES = ("sent", "delivered", "read", "failed")


# ---------------------------------------------------------------- verification


def verify_signature(raw_body: bytes, header: str | None, app_secret: str) -> bool:
    """X-Hub-Signature-256 is "sha256=" + hex HMAC-SHA256 of the raw body keyed with the app secret."""
    if not app_secret or not header or not isinstance(header, str):
        return False
    scheme, _, received = header.strip().partition("=")
    if scheme.lower() != "sha256" or not received:
        return False
    expected = hmac.new(app_secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.strip().lower())


def verify_handshake(params: dict, verify_token: str) -> str | None:
    """Meta's subscription check: hub.mode=subscribe and our verify token → echo hub.challenge."""
    if not verify_token:
        return None
    mode, token, challenge = params.get("hub.mode"), params.get("hub.verify_token"), params.get("hub.challenge")
    if mode != "subscribe" or not isinstance(token, str) or not isinstance(challenge, str) or not challenge:
        return None
    if not hmac.compare_digest(token.encode("utf-8"), verify_token.encode("utf-8")):
        return None
    return challenge


# ---------------------------------------------------------------- inbound parsing


@dataclass(frozen=True)
class StatusUpdate:
    wamid: str
    recipient: str  # E.164 ("+" added) when it looks like a phone number, else as Meta sent it
    status: str  # sent | delivered | read | failed
    timestamp: datetime | None
    errors: list[dict[str, Any]] = field(default_factory=list)  # [{"code": int, "title": str}]
    phone_number_id: str | None = None


@dataclass
class WebhookBatch:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # value-level errors Meta reports asynchronously
    skipped: int = 0  # malformed entries / changes / messages / statuses that were left out
    ignored: int = 0  # well-formed but not for us (other webhook fields, unknown status values)
    skipped_reasons: list[str] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        if len(self.skipped_reasons) < 50:
            self.skipped_reasons.append(reason)


class _Malformed(ValueError):
    pass


def _obj(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise _Malformed(f"{what} is not an object")
    return value


def _str(value: Any, what: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise _Malformed(f"{what} is not a non-empty string")
    return value


def _list(value: Any, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Malformed(f"{what} is not a list")
    return value


def _timestamp(value: Any) -> datetime | None:
    try:
        seconds = int(str(value))
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Malformed(f"{what} is not a number")
    try:
        return float(value)
    except ValueError as exc:
        raise _Malformed(f"{what} is not a number") from exc


def wa_id_to_e164(wa_id: str) -> str | None:
    """Meta's `from` / `wa_id` is the number without "+": E.164 via crm.contacts, digits as a fallback."""
    digits = wa_id.strip().lstrip("+")
    if not digits.isdigit() or not 6 <= len(digits) <= 15:
        return None
    return normalize_phone("+" + digits) or "+" + digits


def _parse_message(raw: Any, value_meta: dict, profiles: dict[str, str], received_at: datetime) -> InboundMessage:
    msg = _obj(raw, "message")
    sender = wa_id_to_e164(_str(msg.get("from"), "message.from"))
    if sender is None:
        raise _Malformed("message.from is not a phone number")
    wamid = _str(msg.get("id"), "message.id")
    kind = _str(msg.get("type"), "message.type")
    meta: dict[str, Any] = {"type": kind, "wa_id": msg["from"], **value_meta}
    profile = profiles.get(msg["from"])
    if profile:
        meta["profile_name"] = profile
    sent_at = _timestamp(msg.get("timestamp"))
    if sent_at is not None:
        meta["sent_at"] = sent_at.isoformat()
    context = msg.get("context")
    if isinstance(context, dict) and isinstance(context.get("id"), str):
        meta["context_id"] = context["id"]  # the message this one replies to (e.g. our interactive message)
        if isinstance(context.get("from"), str):
            meta["context_from"] = context["from"]
    text = ""
    if kind == "text":
        body = _obj(msg.get("text"), "message.text")
        text = clean_text(_str(body.get("body"), "message.text.body", required=False) or "")
    elif kind == "interactive":
        interactive = _obj(msg.get("interactive"), "message.interactive")
        itype = _str(interactive.get("type"), "message.interactive.type")
        if itype not in ("button_reply", "list_reply"):
            raise _Malformed(f"unsupported interactive type {itype!r}")
        reply = _obj(interactive.get(itype), f"message.interactive.{itype}")
        text = clean_text(_str(reply.get("title"), f"{itype}.title"))
        meta["payload"] = _str(reply.get("id"), f"{itype}.id")
        meta["interactive_type"] = itype
        if isinstance(reply.get("description"), str):
            meta["description"] = reply["description"]
    elif kind == "button":  # quick-reply button of a template message
        button = _obj(msg.get("button"), "message.button")
        text = clean_text(_str(button.get("text"), "button.text"))
        meta["payload"] = _str(button.get("payload"), "button.payload", required=False) or text
    elif kind == "location":
        loc = _obj(msg.get("location"), "message.location")
        meta["latitude"] = _number(loc.get("latitude"), "location.latitude")
        meta["longitude"] = _number(loc.get("longitude"), "location.longitude")
        for key, name in (("name", "location_name"), ("address", "location_address"), ("url", "location_url")):
            if isinstance(loc.get(key), str):
                meta[name] = loc[key]
    elif kind in MEDIA_TYPES:
        media = _obj(msg.get(kind), f"message.{kind}")
        meta["media_id"] = _str(media.get("id"), f"{kind}.id")
        for key, name in (("mime_type", "mime_type"), ("sha256", "sha256"), ("caption", "caption"),
                          ("filename", "filename")):
            if isinstance(media.get(key), str):
                meta[name] = media[key]
        if isinstance(media.get("animated"), bool):
            meta["animated"] = media["animated"]
        meta["unsupported_media"] = True
    elif kind == "reaction":
        reaction = _obj(msg.get("reaction"), "message.reaction")
        meta["reaction_to"] = _str(reaction.get("message_id"), "reaction.message_id")
        emoji = reaction.get("emoji")
        meta["reaction_emoji"] = emoji if isinstance(emoji, str) else ""  # "" = reaction removed
    else:  # contacts, order, system, unsupported, ...: nothing the bot can read
        meta["unsupported"] = kind != "system"
        errors = [_error_item(e) for e in _list(msg.get("errors"), "message.errors") if isinstance(e, dict)]
        if errors:
            meta["errors"] = errors
    return InboundMessage(channel=CHANNEL, sender_id=sender, text=text, received_at=received_at,
                          metadata=meta, external_id=wamid)


def _error_item(raw: dict) -> dict[str, Any]:
    code = raw.get("code")
    item: dict[str, Any] = {"code": code if isinstance(code, int) else None,
                            "title": str(raw.get("title") or raw.get("message") or "")}
    details = (raw.get("error_data") or {}).get("details") if isinstance(raw.get("error_data"), dict) else None
    if isinstance(details, str):
        item["details"] = details
    return item


def _parse_status(raw: Any, phone_number_id: str | None) -> StatusUpdate | None:
    st = _obj(raw, "status")
    wamid = _str(st.get("id"), "status.id")
    status = _str(st.get("status"), "status.status")
    recipient = _str(st.get("recipient_id"), "status.recipient_id")
    if status not in STATUSES:
        return None
    errors = [_error_item(e) for e in _list(st.get("errors"), "status.errors") if isinstance(e, dict)]
    return StatusUpdate(wamid=wamid, recipient=wa_id_to_e164(recipient) or recipient, status=status,
                        timestamp=_timestamp(st.get("timestamp")), errors=errors, phone_number_id=phone_number_id)


def parse_webhook(payload: dict, received_at: datetime) -> WebhookBatch:
    """Meta's webhook body → messages and statuses; never raises, malformed parts are skipped and counted."""
    batch = WebhookBatch()
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        batch.skip("payload has no entry list")
        return batch
    if payload.get("object") not in (None, "whatsapp_business_account"):
        batch.ignored += 1
        return batch
    for entry in payload["entry"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
            batch.skip("entry has no changes list")
            continue
        for change in entry["changes"]:
            try:
                change = _obj(change, "change")
                if change.get("field") != "messages":
                    batch.ignored += 1
                    continue
                value = _obj(change.get("value"), "change.value")
                meta = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
                value_meta = {k: meta[k] for k in ("phone_number_id", "display_phone_number")
                              if isinstance(meta.get(k), str)}
                profiles = {}
                for contact in _list(value.get("contacts"), "value.contacts"):
                    if isinstance(contact, dict) and isinstance(contact.get("wa_id"), str):
                        name = (contact.get("profile") or {}).get("name") if isinstance(contact.get("profile"), dict) else None
                        if isinstance(name, str):
                            profiles[contact["wa_id"]] = clean_text(name)
                messages = _list(value.get("messages"), "value.messages")
                statuses = _list(value.get("statuses"), "value.statuses")
                errors = _list(value.get("errors"), "value.errors")
            except _Malformed as exc:
                batch.skip(str(exc))
                continue
            for raw in messages:
                try:
                    batch.messages.append(_parse_message(raw, value_meta, profiles, received_at))
                except _Malformed as exc:
                    batch.skip(str(exc))
            for raw in statuses:
                try:
                    update = _parse_status(raw, value_meta.get("phone_number_id"))
                except _Malformed as exc:
                    batch.skip(str(exc))
                    continue
                if update is None:
                    batch.ignored += 1
                else:
                    batch.statuses.append(update)
            batch.errors.extend(_error_item(e) for e in errors if isinstance(e, dict))
    return batch


def needs_text_only_reply(msg: InboundMessage) -> bool:
    """A photo, voice note, sticker, contact card…: the caller answers "I can only read text" instead of the bot."""
    meta = msg.metadata or {}
    return msg.channel == CHANNEL and not msg.text and bool(meta.get("unsupported_media") or meta.get("unsupported"))


# ---------------------------------------------------------------- outbound builders

_SENTENCE_END = re.compile(r"[.!?…。！？](?:[\"'”’)\]]*)\s+")


def split_text(text: str, limit: int = TEXT_MAX) -> list[str]:
    """Chunks of at most `limit` chars, cut at a paragraph, line, sentence or word boundary (in that order of
    preference, as late as possible); a single word longer than the limit is the only thing cut mid-word."""
    rest = (text or "").strip()
    chunks: list[str] = []
    while len(rest) > limit:
        window = rest[: limit + 1]  # a boundary right after the limit still lets the chunk end at the limit
        cut = _best_cut(window, limit)
        chunk, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if chunk:
            chunks.append(chunk)
    if rest:
        chunks.append(rest)
    return chunks


def _best_cut(window: str, limit: int) -> int:
    half = limit // 2
    candidates = [
        [m.end() for m in re.finditer(r"\n\s*\n", window)],  # paragraph
        [m.end() for m in re.finditer(r"\n", window)],  # line (e.g. numbered options)
        [m.end() for m in _SENTENCE_END.finditer(window)],  # sentence
    ]
    for ends in candidates:
        good = [e for e in ends if half <= e and len(window[:e].rstrip()) <= limit]
        if good:
            return good[-1]
    spaces = [m.start() for m in re.finditer(r"\s", window) if 0 < m.start() <= limit]
    if spaces:
        return spaces[-1]
    return limit  # one word longer than the limit


def _to(recipient: str) -> str:
    return recipient.strip().lstrip("+")


def _base(to: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": _to(to)}


def text_payload(to: str, body: str) -> dict[str, Any]:
    return {**_base(to), "type": "text", "text": {"preview_url": False, "body": body}}


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


def _numbered(text: str, buttons: Sequence[Button]) -> str:
    options = "\n".join(f"{i}. {b.title or b.payload}" for i, b in enumerate(buttons, start=1))
    return f"{text}\n\n{options}" if text else options


def _button_kind(buttons: Sequence[Button]) -> str:
    """'button' (≤3 short titles), 'list' (≤10 rows) or 'numbered' (text with numbered options)."""
    titles = [b.title for b in buttons]
    payloads = [b.payload for b in buttons]
    if len(set(payloads)) != len(payloads) or any(not p for p in payloads):
        return "numbered"  # ids must be unique and non-empty to map a tap back
    if (len(buttons) <= REPLY_BUTTONS_MAX and all(0 < len(t) <= REPLY_TITLE_MAX for t in titles)
            and len(set(titles)) == len(titles) and all(len(p) <= REPLY_ID_MAX for p in payloads)):
        return "button"
    if len(buttons) <= LIST_ROWS_MAX and all(len(p) <= LIST_ROW_ID_MAX for p in payloads):
        return "list"
    return "numbered"


def _interactive(to: str, body: str, buttons: Sequence[Button], kind: str, list_label: str) -> dict[str, Any]:
    if kind == "button":
        action = {"buttons": [{"type": "reply", "reply": {"id": b.payload, "title": b.title}} for b in buttons]}
        return {**_base(to), "type": "interactive",
                "interactive": {"type": "button", "body": {"text": body}, "action": action}}
    rows = []
    for b in buttons:
        title = b.title or b.payload
        row: dict[str, Any] = {"id": b.payload, "title": _shorten(title, LIST_ROW_TITLE_MAX)}
        if len(title) > LIST_ROW_TITLE_MAX:  # the full title stays readable in the row's description
            row["description"] = _shorten(title, LIST_ROW_DESCRIPTION_MAX)
        rows.append(row)
    label = _shorten(list_label or DEFAULT_LIST_BUTTON, LIST_BUTTON_MAX)
    return {**_base(to), "type": "interactive",
            "interactive": {"type": "list", "body": {"text": body},
                            "action": {"button": label, "sections": [{"rows": rows}]}}}


def _split_body(text: str) -> tuple[str, str]:
    """(head sent as text messages, tail ≤ 1,024 chars used as the interactive body)."""
    if len(text) <= INTERACTIVE_BODY_MAX:
        return "", text
    tail_start = len(text) - INTERACTIVE_BODY_MAX
    for pattern in (r"\n\s*\n", r"\n", _SENTENCE_END.pattern):
        starts = [m.end() for m in re.finditer(pattern, text) if m.end() >= tail_start]
        if starts:
            cut = starts[0]
            if text[cut:].strip():
                return text[:cut].rstrip(), text[cut:].strip()
    return text, SHORT_BODY


def build_payloads(to: str, msg: OutboundMessage, list_label: str = DEFAULT_LIST_BUTTON) -> list[dict[str, Any]]:
    """One normalized message → the Graph API message bodies that carry it, in sending order."""
    text = (msg.text or "").strip()
    buttons = [b for b in msg.buttons if isinstance(b, Button)]
    if not buttons:
        return [text_payload(to, chunk) for chunk in split_text(text)]
    kind = _button_kind(buttons)
    if kind == "numbered":
        return [text_payload(to, chunk) for chunk in split_text(_numbered(text, buttons))]
    head, body = _split_body(text)
    payloads = [text_payload(to, chunk) for chunk in split_text(head)]
    payloads.append(_interactive(to, body or SHORT_BODY, buttons, kind, list_label))
    return payloads


def build_template(to: str, name: str, language_code: str,
                   components: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    template: dict[str, Any] = {"name": name, "language": {"code": language_code}}
    if components:
        template["components"] = components
    return {**_base(to), "type": "template", "template": template}


# ---------------------------------------------------------------- errors


class ErrorKind(str, enum.Enum):
    OUTSIDE_WINDOW = "outside_window"  # 131047: 24-hour window closed → send an approved template
    THROTTLED = "throttled"  # retry with backoff
    TRANSIENT = "transient"  # retry
    PERMANENT = "permanent"  # record, never retry
    # The request went out and its answer was lost (read timeout, dropped connection): Meta may have the
    # message. The Cloud API has no idempotency key, so it is never sent again — recorded as unconfirmed.
    UNCONFIRMED = "unconfirmed"


OUTSIDE_WINDOW_CODES = frozenset({131047})
THROTTLED_CODES = frozenset({130429, 131056, 80007, 4})
TRANSIENT_CODES = frozenset({131000, 1, 2, 131016})
PERMANENT_CODES = frozenset({100, 131026, 131051, 131008, 131009, 131021, 131052, 131053, 132000, 132001,
                             132005, 132007, 132012, 132015, 132016, 133010, 190, 0, 10, 3})


def error_details(body: Any) -> tuple[int | None, str | None]:
    """(code, title) from a Graph API error body {"error": {"code", "message", "error_data": {"details"}}}."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return None, None
    err = body["error"]
    code = err.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    title = err.get("message") or err.get("title") or err.get("type")
    details = err.get("error_data", {}).get("details") if isinstance(err.get("error_data"), dict) else None
    if isinstance(details, str) and details and details != title:
        title = f"{title}: {details}" if title else details
    return code, (str(title)[:400] if title else None)


def classify_error(status_code: int | None, body: Any) -> ErrorKind:
    """status_code None means the request never got an answer (network error, timeout)."""
    if status_code is None:
        return ErrorKind.TRANSIENT
    code, _ = error_details(body)
    if code in OUTSIDE_WINDOW_CODES:
        return ErrorKind.OUTSIDE_WINDOW
    if code in THROTTLED_CODES or status_code == 429:
        return ErrorKind.THROTTLED
    if code in PERMANENT_CODES:
        return ErrorKind.PERMANENT
    if code in TRANSIENT_CODES or status_code >= 500:
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT
