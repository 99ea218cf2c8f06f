"""Email <-> normalized messages. Pure functions, no I/O.

Parsing is done by the stdlib ``email`` package with ``email.policy.default`` (never by hand); this module only
decides which part is the body, decodes it robustly, strips quoted history/signatures, recognises automated
mail (RFC 3834 and de-facto headers), derives the conversation thread (RFC 5322 Message-ID / In-Reply-To /
References) and composes the one reply email per bot turn.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, parseaddr
from typing import Any, Iterable, Sequence

import jinja2
from lxml import etree
from markupsafe import Markup, escape

from channels.core.messages import Button, InboundMessage, OutboundMessage, clean_text
from crm.contacts import extract_order_number, normalize_email

CHANNEL = "email"
MAX_REFERENCES = 20  # RFC 5322 3.6.4 allows trimming; we keep the root and the most recent ids

# --------------------------------------------------------------------------------------------------------------
# Parsed shape


@dataclass(frozen=True)
class ParsedEmail:
    from_addr: str | None  # normalized (lower-case) address, None if missing/invalid
    from_name: str
    to: tuple[str, ...]
    subject: str
    message_id: str | None  # "<id@host>"
    in_reply_to: str | None
    references: tuple[str, ...]
    text: str  # full readable body (plain preferred, else HTML converted)
    reply_text: str  # text with quoted history and signature removed
    received_at: datetime
    html: str | None = None
    attachments: tuple[dict[str, Any], ...] = ()
    reply_to: str | None = None
    # Content-Language, else Accept-Language (Outlook sends both): a weak prior for the shopper's language.
    content_language: str | None = None
    message: EmailMessage | None = field(default=None, repr=False, compare=False)

    @property
    def order_hint(self) -> str | None:
        return extract_order_number(self.subject)

    @property
    def thread_key(self) -> str:
        return thread_key(self)


# --------------------------------------------------------------------------------------------------------------
# Headers and ids

_MSGID_RE = re.compile(r"<[^<>\s]+>")


def _header(msg: Message, name: str) -> str:
    """A header as text; never raises (malformed encoded words or addresses fall back to the raw value)."""
    try:
        value = msg.get(name)
    except Exception:  # policy.default header parsing can fail on very broken input
        value = None
        for key, raw in getattr(msg, "_headers", []):
            if key.lower() == name.lower():
                value = raw
                break
    if value is None:
        return ""
    try:
        return re.sub(r"\s+", " ", str(value)).strip()
    except Exception:
        return ""


def _all_headers(msg: Message, name: str) -> list[str]:
    try:
        values = msg.get_all(name) or []
    except Exception:
        values = [raw for key, raw in getattr(msg, "_headers", []) if key.lower() == name.lower()]
    out = []
    for value in values:
        try:
            out.append(re.sub(r"\s+", " ", str(value)).strip())
        except Exception:
            continue
    return out


def parse_msgids(value: str | None) -> list[str]:
    """Message ids in a Message-ID / In-Reply-To / References value, in order, de-duplicated."""
    if not value:
        return []
    ids = _MSGID_RE.findall(value)
    if not ids:  # some broken clients omit the angle brackets
        ids = [f"<{tok}>" for tok in value.split() if "@" in tok and len(tok) < 250]
    seen: set[str] = set()
    out = []
    for mid in ids:
        if mid not in seen:
            seen.add(mid)
            out.append(mid)
    return out


def _first_msgid(value: str | None) -> str | None:
    ids = parse_msgids(value)
    return ids[0] if ids else None


# --------------------------------------------------------------------------------------------------------------
# Charsets

_SINGLE_BYTE_LATIN = {"iso-8859-1", "latin-1", "latin1", "iso-8859-15", "windows-1252", "cp1252", "us-ascii",
                      "ascii", "iso8859-1", "l1"}


def decode_bytes(data: bytes, declared: str | None) -> str:
    """Decode with the declared charset; wrong or unknown charsets fall back (UTF-8, then cp1252) and never raise."""
    declared = (declared or "").strip().strip('"').lower() or None
    if declared in ("utf8", "unicode-1-1-utf-8"):
        declared = "utf-8"
    if declared in _SINGLE_BYTE_LATIN and not data.isascii():
        # Mislabelled UTF-8 is the most common charset error; a valid non-ASCII UTF-8 sequence is almost never
        # intended Latin-1 text.
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    for charset in (declared, "utf-8"):
        if not charset:
            continue
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace")


def _part_text(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if data is None:
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(data, charset)


# --------------------------------------------------------------------------------------------------------------
# HTML -> text

_BLOCK_TAGS = {"p", "div", "br", "tr", "table", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
               "blockquote", "section", "article", "header", "footer", "hr", "dl", "dt", "dd", "address", "center"}
_SKIP_TAGS = {"script", "style", "head", "title", "noscript", "template", "svg"}


# Void elements: lxml reports an end for them too; what they do happens at the start.
_VOID_TAGS = {"br", "hr", "img", "input", "meta", "link", "wbr", "area", "base", "col", "embed", "param", "source",
              "track"}


class _HtmlToText:
    """An lxml parser target (start/end/data events from libxml2's HTML parser, which recovers from any
    markup in linear time — the stdlib's html.parser takes minutes on 100 KB of unclosed tags)."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []  # (blockquote depth, text)
        self.current: list[str] = []
        self.depth = 0
        self.line_depth = 0
        self.skip = 0
        self.pre = 0
        self.links: list[tuple[str | None, int]] = []  # (href, index in current when opened)

    def _newline(self) -> None:
        text = "".join(self.current)
        text = text if self.pre else re.sub(r"[ \t\r\n\f]+", " ", text).strip()
        self.lines.append((self.line_depth, text))
        self.current = []
        self.line_depth = self.depth

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if not isinstance(tag, str):
            return
        tag = tag.lower()
        if tag in _SKIP_TAGS:
            self.skip += 1
            return
        if self.skip:
            return
        if tag in _BLOCK_TAGS:
            self._newline()
        if tag == "blockquote":
            self.depth += 1
            self.line_depth = self.depth
        elif tag == "pre":
            self.pre += 1
        elif tag == "li":
            self.current.append("- ")
        elif tag == "a":
            self.links.append((attrib.get("href"), len(self.current)))
        elif tag == "img":
            alt = (attrib.get("alt") or "").strip()
            if alt:
                self.current.append(f" {alt} ")

    def end(self, tag: str) -> None:
        if not isinstance(tag, str):
            return
        tag = tag.lower()
        if tag in _VOID_TAGS:
            return
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip:
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            label = re.sub(r"\s+", " ", "".join(self.current[start:])).strip()
            if href and re.match(r"(?i)(https?:|mailto:)", href.strip()):
                url = href.strip()
                shown = url[7:] if url.lower().startswith("mailto:") else url
                if not label:
                    self.current.append(shown)
                elif label.rstrip("/") != shown.rstrip("/"):
                    self.current.append(f" ({shown})")
        if tag in _BLOCK_TAGS:
            self._newline()
        if tag == "blockquote":
            self.depth = max(0, self.depth - 1)
            self.line_depth = self.depth
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)

    def data(self, data: str) -> None:
        if not self.skip:
            self.current.append(data)

    def comment(self, text: str) -> None:
        pass

    def close(self) -> None:  # the parser's end of input; the text is read with text()
        return None

    def text(self) -> str:
        self._newline()
        out: list[str] = []
        for depth, line in self.lines:
            if not line and out and out[-1] == "":
                continue
            out.append(("> " * depth + line) if (depth and line) else line)
        return "\n".join(out).strip("\n")


def html_to_text(html: str) -> str:
    target = _HtmlToText()
    if not html.strip():
        return ""
    parser = etree.HTMLParser(target=target, recover=True, no_network=True, remove_comments=True)
    try:
        parser.feed(html)
        parser.close()
    except (etree.LxmlError, ValueError):  # recovers from anything; this is belt and braces
        pass
    return target.text().strip()


# --------------------------------------------------------------------------------------------------------------
# Quoted history and signatures

_ATTRIBUTION = [
    # en (Gmail, Apple Mail, Thunderbird): "On Mon, 1 Jan 2024 at 10:00, Jane <jane@x.com> wrote:"
    re.compile(r"^\s*On\b.{0,300}\bwrote\s*:\s*$", re.I | re.S),
    # de: "Am 01.01.2024 um 10:00 schrieb Jane <jane@x.com>:"
    re.compile(r"^\s*Am\b.{0,300}\bschrieb\b.{0,200}:\s*$", re.I | re.S),
    # es: "El lun, 1 ene 2024 a las 10:00, Jane (<jane@x.com>) escribió:"
    re.compile(r"^\s*El\b.{0,300}\bescribi[oó]\s*:\s*$", re.I | re.S),
    # fr: "Le lun. 1 janv. 2024 à 10:00, Jane <jane@x.com> a écrit :"
    re.compile(r"^\s*Le\b.{0,300}\ba [ée]crit\s*:\s*$", re.I | re.S),
    # pt: "Em seg., 1 de jan. de 2024 às 10:00, Jane <jane@x.com> escreveu:"
    re.compile(r"^\s*Em\b.{0,300}\bescreveu\s*:\s*$", re.I | re.S),
    # it: "Il giorno lun 1 gen 2024 alle ore 10:00 Jane <jane@x.com> ha scritto:"
    re.compile(r"^\s*Il\b.{0,300}\bha scritto\s*:\s*$", re.I | re.S),
    # nl: "Op ma 1 jan. 2024 om 10:00 schreef Jane <jane@x.com>:"
    re.compile(r"^\s*Op\b.{0,300}\bschreef\b.{0,200}:\s*$", re.I | re.S),
]
# "Jane wrote:" without a date: only history if quoted lines follow.
_BARE_ATTRIBUTION = re.compile(
    r"^.{0,200}\b(wrote|schrieb|escribi[oó]|a [ée]crit|escreveu|ha scritto|schreef)\b.{0,120}:\s*$", re.I)
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(Original Message|Ursprüngliche Nachricht|Originalnachricht|Mensaje original|"
    r"Message d'origine|Message original|Mensagem original|Messaggio originale|Oorspronkelijk bericht|"
    r"Origineel bericht)\s*-{2,}\s*$", re.I)
_OUTLOOK_FROM = re.compile(r"^\s*\**\s*(From|Von|De|Da|Van)\s*:\s*\**\s*\S", re.I)
_OUTLOOK_SENT = re.compile(
    r"^\s*\**\s*(Sent|Date|Gesendet|Datum|Enviado|Enviada|Fecha|Envoy[ée]|Date d'envoi|Inviato|Data|"
    r"Verzonden|Verstuurd)(\s+(el|em|le|il|op|on))?\s*:", re.I)
_UNDERSCORE_RULE = re.compile(r"^\s*_{10,}\s*$")
_SIGNATURE_DELIMITER = re.compile(r"^--\s?$")
_MOBILE_SIGNATURE = re.compile(
    r"^\s*(Sent from (my|Mail|Yahoo|Outlook)\b|Sent with \w|Get Outlook for\b|"
    r"Von meinem \S+.{0,40}gesendet|Gesendet (von|mit) (meinem|\w)|"
    r"Enviado (desde|do|a partir do|de) (mi|meu|o|my|\w)|Envoy[ée] (de|depuis) (mon|\w)|"
    r"Inviato da\b|Verzonden (vanaf|met|van) |Verstuurd (vanaf|met) )", re.I)


def _cut_index(lines: list[str]) -> int:
    """Index of the first line of quoted history (len(lines) if none)."""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if _ORIGINAL_MESSAGE.match(stripped):
            return i
        # Attributions wrapped over two or three lines by the client.
        for span in (1, 2, 3):
            joined = " ".join(l.strip() for l in lines[i:i + span])
            if any(p.match(joined) for p in _ATTRIBUTION):
                return i
        if _BARE_ATTRIBUTION.match(stripped):
            following = [l for l in lines[i + 1:i + 4] if l.strip()]
            if following and following[0].lstrip().startswith(">"):
                return i
        if _OUTLOOK_FROM.match(stripped):
            window = lines[i + 1:i + 5]
            if any(_OUTLOOK_SENT.match(l) for l in window):
                start = i
                if i > 0 and _UNDERSCORE_RULE.match(lines[i - 1]):
                    start = i - 1
                return start
    return len(lines)


def strip_reply(text: str) -> str:
    """The new part of a reply: quoted history ("On … wrote:", "> " lines, Outlook headers) and signatures removed."""
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = lines[:_cut_index(lines)]
    lines = [l for l in lines if not l.lstrip().startswith(">")]  # interleaved quotes
    for i, line in enumerate(lines):
        if _SIGNATURE_DELIMITER.match(line) or (_MOBILE_SIGNATURE.match(line) and len(line.strip()) < 80):
            lines = lines[:i]
            break
    out = "\n".join(l.rstrip() for l in lines)
    return re.sub(r"\n{3,}", "\n\n", out).strip()


# --------------------------------------------------------------------------------------------------------------
# Parsing


def _walk_leaves(part: Message) -> Iterable[Message]:
    """Leaf parts, without descending into attached messages (message/rfc822 is one attachment)."""
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        for sub in part.iter_parts() if isinstance(part, EmailMessage) else part.get_payload():
            yield from _walk_leaves(sub)
    else:
        yield part


def _body_part(msg: EmailMessage, subtype: str) -> EmailMessage | None:
    try:
        return msg.get_body(preferencelist=(subtype,))
    except Exception:
        return None


def parse_email(raw: bytes, received_at: datetime | None = None) -> ParsedEmail:
    """Parse a raw RFC 5322 message. Never raises on malformed input; missing fields come back empty/None."""
    msg = BytesParser(policy=policy.default).parsebytes(raw or b"")
    return parse_message(msg, received_at)


def parse_message(msg: EmailMessage, received_at: datetime | None = None) -> ParsedEmail:
    received_at = received_at or datetime.now(timezone.utc)
    name, addr = parseaddr(_header(msg, "From"))
    from_addr = normalize_email(addr) if addr else None
    reply_to = normalize_email(_header(msg, "Reply-To")) if _header(msg, "Reply-To") else None
    to = []
    for _, a in getaddresses(_all_headers(msg, "To")):
        norm = normalize_email(a)
        if norm:
            to.append(norm)

    plain_part = _body_part(msg, "plain")
    html_part = _body_part(msg, "html")
    html = _part_text(html_part) if html_part is not None else None
    if plain_part is not None:
        text = _part_text(plain_part)
    elif html is not None:
        text = html_to_text(html)
    elif msg.get_content_maintype() == "text" and not msg.is_multipart():
        text = _part_text(msg)
    else:
        text = ""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()

    body_parts = {id(p) for p in (plain_part, html_part) if p is not None}
    attachments = []
    if msg.is_multipart():
        for part in _walk_leaves(msg):
            if id(part) in body_parts:
                continue
            try:
                filename = part.get_filename()
            except Exception:
                filename = None
            ctype = part.get_content_type()
            disposition = (part.get_content_disposition() or "").lower()
            if disposition != "attachment" and not filename and ctype in ("text/plain", "text/html"):
                continue  # an alternative body we did not choose
            try:
                payload = part.get_payload(decode=True)
                size = len(payload) if isinstance(payload, (bytes, bytearray)) else len(str(part.get_payload()))
            except Exception:
                size = 0
            attachments.append({"filename": clean_text(filename or "")[:200] or None, "content_type": ctype,
                                "size": size})

    references = parse_msgids(" ".join(_all_headers(msg, "References")))
    return ParsedEmail(
        from_addr=from_addr,
        from_name=clean_text(name or ""),
        to=tuple(to),
        subject=clean_text(_header(msg, "Subject")),
        message_id=_first_msgid(_header(msg, "Message-ID")),
        in_reply_to=_first_msgid(_header(msg, "In-Reply-To")),
        references=tuple(references),
        text=text,
        reply_text=strip_reply(text),
        received_at=received_at,
        html=html,
        attachments=tuple(attachments),
        reply_to=reply_to,
        content_language=clean_text(_header(msg, "Content-Language") or _header(msg, "Accept-Language"))[:100] or None,
        message=msg,
    )


# --------------------------------------------------------------------------------------------------------------
# Automated mail (RFC 3834 and the headers real autoresponders, list servers and MTAs set)

_BOUNCE_LOCALPARTS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}
_NOREPLY_LOCALPARTS = {"noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply"}


def is_automated(msg: EmailMessage | ParsedEmail, own_addresses: Iterable[str] = ()) -> str | None:
    """Why this message must never be answered (auto-reply, bounce, list, bulk, loop), or None for a person."""
    if isinstance(msg, ParsedEmail):
        if msg.message is None:
            return None
        msg = msg.message
    auto = _header(msg, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"auto-submitted: {auto}"
    precedence = _header(msg, "Precedence").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autogenerated"):
        if _header(msg, name):
            return f"{name.lower()} header"
    suppress = {v.strip().lower() for v in _header(msg, "X-Auto-Response-Suppress").split(",")}
    if suppress & {"all", "oof"}:
        return "x-auto-response-suppress: " + ",".join(sorted(suppress & {"all", "oof"}))
    if _header(msg, "List-Id") or _header(msg, "List-Unsubscribe"):
        return "mailing list (List-Id/List-Unsubscribe)"
    if msg.get_content_type() == "multipart/report" or msg.get_content_type() == "message/delivery-status":
        return "delivery report (multipart/report)"
    return_paths = _all_headers(msg, "Return-Path")
    if any(rp.replace(" ", "") == "<>" for rp in return_paths):
        return "null return path (<>)"
    raw_from = _header(msg, "From")
    _, addr = parseaddr(raw_from)
    if not raw_from or not addr or addr.strip() in ("<>", ""):
        return "null sender"
    local = addr.split("@", 1)[0].strip().lower()
    if local in _BOUNCE_LOCALPARTS:
        return f"system sender ({local})"
    if local in _NOREPLY_LOCALPARTS:
        return f"no-reply sender ({local})"
    own = {normalize_email(a) for a in own_addresses} - {None}
    if normalize_email(addr) in own:
        return "sent by this mailbox (loop)"
    return None


# --------------------------------------------------------------------------------------------------------------
# Threading


def thread_root(parsed: ParsedEmail) -> str | None:
    if parsed.references:
        return parsed.references[0]
    return parsed.in_reply_to or parsed.message_id


def thread_key(parsed: ParsedEmail) -> str:
    """The key of a *new* conversation for this email: hash of (sender address, this email's own Message-ID).

    An email joins an existing conversation only through a reference the shop itself issued — the
    Message-ID of one of our replies in In-Reply-To/References (channels/email/threading.py). Nothing the
    sender writes (a From address, an order number in the subject, someone else's Message-ID) leads into
    another conversation, so nothing can inherit that conversation's verified orders.
    """
    root = parsed.message_id
    if root is None:  # no id at all: the email's own content names it (a re-read is still the same one)
        body = hashlib.sha256((parsed.text or "").encode()).hexdigest()
        root = f"noid:{normalize_subject(parsed.subject).lower()}:{parsed.received_at.isoformat()}:{body}"
    digest = hashlib.sha256(f"{parsed.from_addr or ''}\n{root}".encode()).hexdigest()[:32]
    return f"email:{digest}"


_AUTH_RESULT = re.compile(r"\bdmarc\s*=\s*([a-z]+)", re.I)


def dmarc_verdict(parsed: ParsedEmail, authserv_id: str | None = None) -> str | None:
    """DMARC result from the receiving server's Authentication-Results header (RFC 8601): "pass", "fail",
    "none", …; None when no verdict was recorded.

    Only a header our own receiving server adds is believed: with ``authserv_id`` set (EMAIL_AUTHSERV_ID),
    the top-most header naming it, and an email without one counts as "none"; without it, the top-most
    header (receiving servers prepend theirs above anything the sender wrote)."""
    msg = parsed.message
    headers = [str(h) for h in (msg.get_all("Authentication-Results") or [])] if msg is not None else []
    for header in headers:
        server = header.split(";", 1)[0].strip().split()[0].lower() if header.strip() else ""
        if authserv_id and server != authserv_id.lower():
            continue
        match = _AUTH_RESULT.search(header)
        return match.group(1).lower() if match else "none"
    return "none" if authserv_id else None


_REPLY_PREFIX = re.compile(r"^\s*((re|aw|antw|sv|vs|r|rif|res|ref|wg|tr|fw|fwd)\s*(\[\d+\])?\s*:\s*)+", re.I)


def normalize_subject(subject: str) -> str:
    """Subject without reply prefixes (Re:, AW:, RES:, R:, …)."""
    return _REPLY_PREFIX.sub("", subject or "").strip()


def reply_subject(subject: str, language: str = "en") -> str:
    """"Re: <subject>" ("Re:" is what RFC 5322 suggests and every client threads on); the fallback
    subject for an empty one is in the shopper's language."""
    base = re.sub(r"^\s*((re|aw|antw|sv|vs|r|rif|res)\s*(\[\d+\])?\s*:\s*)+", "", subject or "", flags=re.I).strip()
    return f"Re: {base}" if base else f"Re: {_chrome(language, 'subject_fallback')}"


# --------------------------------------------------------------------------------------------------------------
# To the normalized shape


def to_inbound(parsed: ParsedEmail, authserv_id: str | None = None) -> InboundMessage:
    """The normalized message of a *new* thread (channels.email.threading.join_thread may then put it into
    the conversation one of our replies started)."""
    text = clean_text(parsed.reply_text) or clean_text(parsed.text) or clean_text(normalize_subject(parsed.subject))
    metadata = {
        "from": parsed.from_addr,
        "name": parsed.from_name,
        "subject": parsed.subject,
        "message_id": parsed.message_id,
        "references": list(parsed.references),
        "in_reply_to": parsed.in_reply_to,
        "order_hint": parsed.order_hint,
        # The subject's order number, for the bot to read along when the body names none.
        "bot_hint": parsed.order_hint if parsed.order_hint and not extract_order_number(text) else None,
        "attachments": [dict(a) for a in parsed.attachments],
        "content_language": parsed.content_language,
        "dmarc": dmarc_verdict(parsed, authserv_id),
    }
    return InboundMessage(channel=CHANNEL, sender_id=thread_key(parsed), text=text, received_at=parsed.received_at,
                          metadata=metadata, external_id=parsed.message_id)


# --------------------------------------------------------------------------------------------------------------
# Composing the reply

def _chrome(language: str, key: str) -> str:
    """Email chrome (numbered-choice prompt, default subject) from the shopper's catalog."""
    from crm.i18n.catalog import Texts

    return Texts(language)(f"email.{key}")

_URL_RE = re.compile(r"https?://[^\s<>\"']+", re.I)

_HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="{{ language }}"><head><meta charset="utf-8"></head>
<body style="font-family: Arial, Helvetica, sans-serif; font-size: 14px; line-height: 1.5;">
{% for message in messages %}<p>{{ message | linkify }}</p>
{% endfor %}{% if buttons %}<p>{{ prompt }}</p>
<ol>{% for button in buttons %}<li>{{ button.title }}</li>{% endfor %}</ol>
{% endif %}</body></html>
"""


def _linkify(text: str) -> Markup:
    """Escape text, turn http(s) URLs into links and newlines into <br>."""
    out: list[Markup] = []
    pos = 0
    for match in _URL_RE.finditer(text or ""):
        url = match.group(0).rstrip(".,;:!?)]}")
        end = match.start() + len(url)
        out.append(escape(text[pos:match.start()]))
        out.append(Markup('<a href="{0}">{0}</a>').format(url))
        pos = end
    out.append(escape((text or "")[pos:]))
    return Markup("").join(out).replace("\n", Markup("<br>\n"))


_jinja = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_jinja.filters["linkify"] = _linkify
_html_template = _jinja.from_string(_HTML_TEMPLATE)


def turn_buttons(messages: Sequence[OutboundMessage]) -> list[Button]:
    """All buttons of one bot turn, in the order they are numbered in the email."""
    return [b for m in messages for b in m.buttons]


def render_text(messages: Sequence[OutboundMessage], language: str = "en") -> str:
    parts = [m.text.strip() for m in messages if m.text and m.text.strip()]
    buttons = turn_buttons(messages)
    if buttons:
        prompt = _chrome(language.split("-")[0].lower(), "choice_prompt")
        parts.append(prompt + "\n" + "\n".join(f"{i}. {b.title}" for i, b in enumerate(buttons, start=1)))
    return "\n\n".join(parts) + "\n"


def render_html(messages: Sequence[OutboundMessage], language: str = "en") -> str:
    lang = language.split("-")[0].lower()
    return _html_template.render(language=lang, messages=[m.text.strip() for m in messages if m.text.strip()],
                                 buttons=turn_buttons(messages), prompt=_chrome(lang, "choice_prompt"))


def _reply_target(info: Any) -> tuple[str, str, str | None, list[str]]:
    """(to address, subject, parent Message-ID, references) from a ParsedEmail or an EmailSendContext-like object."""
    if isinstance(info, ParsedEmail):
        return (info.from_addr or "", info.subject, info.message_id,
                list(info.references) or ([info.in_reply_to] if info.in_reply_to else []))
    return (getattr(info, "to_addr", "") or "", getattr(info, "subject", "") or "",
            getattr(info, "parent_message_id", None), list(getattr(info, "references", None) or []))


def _references_chain(references: Sequence[str], parent: str | None) -> list[str]:
    chain = [m for r in references for m in parse_msgids(r)]
    if parent:
        chain += parse_msgids(parent)
    seen: set[str] = set()
    chain = [m for m in chain if not (m in seen or seen.add(m))]
    if len(chain) > MAX_REFERENCES:  # keep the root (threading key) and the most recent ids
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1):]
    return chain


def compose_reply(parsed_or_thread_info: Any, messages: Sequence[OutboundMessage], from_addr: str,
                  language: str | None = None, now: datetime | None = None) -> EmailMessage:
    """ALL messages of one bot turn as ONE reply email (text/plain + text/html alternative).

    ``language`` defaults to the context's ``language`` attribute (EmailSendContext), else "en".
    """
    to_addr, subject, parent, references = _reply_target(parsed_or_thread_info)
    to_norm = normalize_email(to_addr)
    if not to_norm:
        raise ValueError(f"no valid recipient address for the reply: {to_addr!r}")
    from_name, from_email = parseaddr(from_addr)
    if not normalize_email(from_email):
        raise ValueError(f"invalid From address: {from_addr!r}")
    domain = from_email.rsplit("@", 1)[1].lower()
    language = (language or getattr(parsed_or_thread_info, "language", None) or "en").split("-")[0].lower()

    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = Address(display_name=from_name, addr_spec=from_email) if from_name else from_email
    msg["To"] = to_norm
    msg["Subject"] = reply_subject(subject, language)
    msg["Date"] = format_datetime(now or datetime.now(timezone.utc))
    # Unguessable: a reply quoting it is how a shopper's next email finds its conversation.
    msg["Message-ID"] = f"<cd.{secrets.token_urlsafe(18)}@{domain}>"
    parent_id = _first_msgid(parent) if parent else None
    if parent_id:
        msg["In-Reply-To"] = parent_id
    chain = _references_chain(references, parent_id)
    if chain:
        msg["References"] = " ".join(chain)
    msg["Auto-Submitted"] = "auto-replied"  # RFC 3834
    msg["X-Auto-Response-Suppress"] = "All"  # ask Exchange/Outlook not to answer us with out-of-office mail
    msg.set_content(render_text(messages, language))
    msg.add_alternative(render_html(messages, language), subtype="html")
    msg["Content-Language"] = language  # after add_alternative, which moves Content-* headers into the first part
    return msg
