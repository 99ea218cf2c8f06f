"""Email <-> normalized messages: bodies, charsets, attachments, reply stripping, threading, automated mail,
the composed reply and numbered choices."""
from __future__ import annotations

from channels.core.choices import resolve_numbered_choice

import re

from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from channels.core.messages import Button, OutboundMessage
from channels.email.mime import (
    compose_reply, is_automated, parse_email, strip_reply, thread_key, to_inbound,
    turn_buttons,
)
from channels.email.smtp import EmailSendContext

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def raw_mail(body: bytes | str, *, headers: str = "", content_type: str = "text/plain; charset=utf-8",
             cte: str = "8bit", subject: str = "Question", sender: str = "Jane Doe <Jane.Doe@Example.COM>",
             message_id: str = "<m1@client.example>") -> bytes:
    head = (f"From: {sender}\nTo: Shop Support <support@shop.test>\nSubject: {subject}\n"
            f"Date: Wed, 01 May 2024 12:00:00 +0000\nMessage-ID: {message_id}\nMIME-Version: 1.0\n{headers}"
            f"Content-Type: {content_type}\nContent-Transfer-Encoding: {cte}\n\n")
    return head.encode() + (body.encode() if isinstance(body, str) else body)


# ---------------------------------------------------------------------------------------------------- bodies

def test_plain_text_basic_fields():
    p = parse_email(raw_mail("Where is my parcel?\n", subject="Order CD-104233 delayed"), NOW)
    assert p.from_addr == "jane.doe@example.com" and p.from_name == "Jane Doe"
    assert p.to == ("support@shop.test",)
    assert p.subject == "Order CD-104233 delayed" and p.message_id == "<m1@client.example>"
    assert p.text == "Where is my parcel?" and p.reply_text == "Where is my parcel?"
    assert p.received_at == NOW and p.in_reply_to is None and p.references == ()


def test_multipart_alternative_prefers_text_plain():
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "a@example.com", "s@shop.test", "Hi", "<x@y>"
    msg.set_content("Plain version of the question")
    msg.add_alternative("<p>HTML version</p>", subtype="html")
    p = parse_email(msg.as_bytes(), NOW)
    assert p.text == "Plain version of the question"
    assert "HTML version" in (p.html or "")
    assert p.attachments == ()


def test_html_only_becomes_readable_text():
    html = """<html><head><title>T</title><style>p {color: red}</style></head><body>
      <script>var secret = 1;</script>
      <p>Hello&nbsp;team,</p><p>I want to <b>return</b> my shoes.<br>Details: <a href="https://shop.test/o/1">my order</a></p>
      <ul><li>Size 42</li><li>Blue</li></ul>
      <a href="https://shop.test/x">https://shop.test/x</a>
    </body></html>"""
    p = parse_email(raw_mail(html, content_type="text/html; charset=utf-8"), NOW)
    assert "secret" not in p.text and "color" not in p.text and "T\n" not in p.text
    assert "Hello\xa0team," in p.text or "Hello team," in p.text
    assert "I want to return my shoes." in p.text
    assert "Details: my order (https://shop.test/o/1)" in p.text
    assert "- Size 42" in p.text and "- Blue" in p.text
    assert p.text.count("https://shop.test/x") == 1  # link text equal to the URL is not repeated


def test_html_gmail_quote_is_stripped():
    html = ('<div dir="ltr">Yes, please cancel it.</div><br><div class="gmail_quote"><div dir="ltr">'
            'On Tue, 30 Apr 2024 at 09:00, Shop &lt;support@shop.test&gt; wrote:<br></div>'
            '<blockquote class="gmail_quote">Do you want to cancel order CD-104233?</blockquote></div>')
    p = parse_email(raw_mail(html, content_type="text/html; charset=utf-8"), NOW)
    assert p.reply_text == "Yes, please cancel it."
    assert "> Do you want to cancel" in p.text


def test_iso_8859_1_quoted_printable():
    body = "Grüße aus München, meine Bestellung ist beschädigt.".encode("iso-8859-1")
    import quopri
    p = parse_email(raw_mail(quopri.encodestring(body), content_type="text/plain; charset=ISO-8859-1",
                             cte="quoted-printable"), NOW)
    assert p.text == "Grüße aus München, meine Bestellung ist beschädigt."


@pytest.mark.parametrize("charset", ["shift_jis", "utf-8", "iso-2022-jp"])
def test_japanese_bodies(charset):
    text = "注文番号104233の配送状況を教えてください。"
    import base64
    body = base64.encodebytes(text.encode(charset))
    p = parse_email(raw_mail(body, content_type=f"text/plain; charset={charset}", cte="base64",
                             subject="=?utf-8?b?" + base64.b64encode("配送について".encode()).decode() + "?="), NOW)
    assert p.text == text
    assert p.subject == "配送について"


def test_wrong_declared_charset_is_best_effort():
    # Declared UTF-8, actually Latin-1 (a classic webmail bug)
    p = parse_email(raw_mail("Café crème, où est mon colis?".encode("latin-1"),
                             content_type="text/plain; charset=utf-8"), NOW)
    assert p.text == "Café crème, où est mon colis?"
    # Declared Latin-1, actually UTF-8
    p = parse_email(raw_mail("Grüße".encode("utf-8"), content_type="text/plain; charset=iso-8859-1"), NOW)
    assert p.text == "Grüße"
    # Unknown charset: no exception, text still usable
    p = parse_email(raw_mail("Olá, tudo bem?".encode("utf-8"), content_type="text/plain; charset=x-unknown-42"), NOW)
    assert p.text == "Olá, tudo bem?"
    # Garbage bytes under a charset that cannot decode them: replacement, never an error
    p = parse_email(raw_mail(b"abc \xff\xfe\x81 def", content_type="text/plain; charset=shift_jis"), NOW)
    assert p.text.startswith("abc") and p.text.endswith("def")


def test_broken_input_never_raises():
    for raw in (b"", b"garbage without headers", b"From: \nSubject: =?utf-8?q?broken\n\n\xff\xfe",
                b"Content-Type: multipart/mixed; boundary=zzz\n\n--zzz\nContent-Type: text/plain\n\nhi\n"):
        p = parse_email(raw, NOW)
        assert isinstance(p.text, str)
        assert isinstance(thread_key(p), str)


def test_attachments_are_listed_not_kept():
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "a@example.com", "s@shop.test", "Photo", "<x@y>"
    msg.set_content("The box arrived damaged, photo attached.")
    msg.add_alternative("<p>The box arrived <b>damaged</b>, photo attached.</p>", subtype="html")
    msg.add_attachment(b"\x89PNG" + b"0" * 1000, maintype="image", subtype="png", filename="box.png")
    msg.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf")
    msg.add_attachment("notes as text", subtype="plain", filename="notes.txt")
    p = parse_email(msg.as_bytes(), NOW)
    assert p.text == "The box arrived damaged, photo attached."
    assert [(a["filename"], a["content_type"], a["size"]) for a in p.attachments] == [
        ("box.png", "image/png", 1004), ("invoice.pdf", "application/pdf", 16), ("notes.txt", "text/plain", 14)]
    inbound = to_inbound(p)
    assert inbound.metadata["attachments"][0]["filename"] == "box.png"
    assert "PNG" not in repr(inbound.metadata)


# ---------------------------------------------------------------------------------------------------- stripping

QUOTED = {
    "en-gmail": "Yes please\n\nOn Tue, Apr 30, 2024 at 9:00 AM Shop Support <\nsupport@shop.test> wrote:\n> Do you want?\n",
    "en-apple": "Yes please\n\nOn 30 Apr 2024, at 09:00, Shop Support <support@shop.test> wrote:\n\n> Do you want?\n",
    "de": "Ja bitte\n\nAm 30.04.2024 um 09:00 schrieb Shop Support <support@shop.test>:\n\n> Möchten Sie?\n",
    "es": "Sí, por favor\n\nEl mar, 30 abr 2024 a las 9:00, Shop Support (<support@shop.test>) escribió:\n> ¿Quiere?\n",
    "fr": "Oui merci\n\nLe mar. 30 avr. 2024 à 09:00, Shop Support <support@shop.test> a écrit :\n> Voulez-vous ?\n",
    "pt": "Sim, por favor\n\nEm ter., 30 de abr. de 2024 às 09:00, Shop Support <support@shop.test> escreveu:\n> Quer?\n",
    "it": "Sì grazie\n\nIl giorno mar 30 apr 2024 alle ore 09:00 Shop Support <support@shop.test> ha scritto:\n> Vuole?\n",
    "nl": "Ja graag\n\nOp di 30 apr. 2024 om 09:00 schreef Shop Support <support@shop.test>:\n\n> Wilt u?\n",
    "outlook-original": "Yes please\n\n-----Original Message-----\nFrom: Shop Support\nSent: Tuesday\nSubject: x\n\nDo you want?",
    "outlook-de": "Ja bitte\n\n-----Ursprüngliche Nachricht-----\nVon: Shop\nGesendet: Dienstag\n\nMöchten Sie?",
    "outlook-headers": ("Yes please\n\n________________________________\nFrom: Shop Support <support@shop.test>\n"
                        "Sent: Tuesday, April 30, 2024 9:00 AM\nTo: Jane\nSubject: Re: order\n\nDo you want?"),
    "outlook-fr": "Oui merci\n\nDe : Shop Support\nEnvoyé : mardi 30 avril 2024 09:00\nÀ : Jane\nObjet : x\n\nVoulez-vous ?",
    "outlook-es": "Sí, por favor\n\nDe: Shop Support\nEnviado el: martes, 30 de abril\nPara: Jane\n\n¿Quiere?",
    "bare-wrote": "Yes please\n\nShop Support wrote:\n> Do you want?\n",
}
EXPECTED = {"de": "Ja bitte", "es": "Sí, por favor", "fr": "Oui merci", "pt": "Sim, por favor", "it": "Sì grazie",
            "nl": "Ja graag", "outlook-de": "Ja bitte", "outlook-fr": "Oui merci", "outlook-es": "Sí, por favor"}


@pytest.mark.parametrize("case", sorted(QUOTED))
def test_quoted_history_is_stripped(case):
    assert strip_reply(QUOTED[case]) == EXPECTED.get(case, "Yes please")


@pytest.mark.parametrize("signature", [
    "-- \nJane Doe\nACME Corp", "--\nJane", "Sent from my iPhone", "Von meinem iPhone gesendet",
    "Enviado desde mi iPhone", "Envoyé de mon iPhone", "Enviado do meu iPhone", "Inviato da iPhone",
    "Verzonden vanaf mijn iPhone", "Get Outlook for Android", "Sent from my Galaxy",
])
def test_signatures_are_stripped(signature):
    assert strip_reply(f"Please cancel order 104233.\n\n{signature}\n") == "Please cancel order 104233."


def test_interleaved_reply_keeps_new_lines_and_drops_quotes():
    text = "> Which size?\n42 please\n> Which colour?\nBlue\n"
    assert strip_reply(text) == "42 please\nBlue"


def test_text_that_merely_mentions_words_is_kept():
    text = "On Monday I ordered shoes.\nFrom: my account page it says shipped.\nDate of delivery unknown."
    assert strip_reply(text) == text


# ---------------------------------------------------------------------------------------------------- threading

def test_every_email_names_its_own_new_thread_and_order_hint_is_extracted():
    """thread_key is the key of a *new* conversation; only our own issued Message-IDs lead into an existing
    one (channels/email/threading.py, tests/email/test_threading.py)."""
    first = parse_email(raw_mail("Where is my order?", subject="Order #104233", message_id="<root@c>"), NOW)
    bot_reply = compose_reply(first, [OutboundMessage("Let me check.")], "Shop <support@shop.test>", now=NOW)
    second = parse_email(raw_mail(
        "Thanks!\n\nOn Wed, 1 May 2024 at 12:00, Shop <support@shop.test> wrote:\n> Let me check.",
        subject="Re: Order #104233", message_id="<second@c>",
        headers=f"In-Reply-To: {bot_reply['Message-ID']}\nReferences: <root@c> {bot_reply['Message-ID']}\n"), NOW)
    assert thread_key(first) != thread_key(second)
    assert thread_key(first) == thread_key(parse_email(raw_mail("Where is my order?", subject="Order #104233",
                                                                  message_id="<root@c>"), NOW))  # re-read: same
    assert first.order_hint == second.order_hint == "CD-104233"
    # our Message-IDs are unguessable: 18 random bytes
    assert re.fullmatch(r"<cd\.[A-Za-z0-9_-]{24}@shop\.test>", str(bot_reply["Message-ID"]))
    inbound = to_inbound(second)
    assert inbound.channel == "email" and inbound.sender_id == thread_key(second)
    assert inbound.external_id == "<second@c>" and inbound.text == "Thanks!"
    assert inbound.metadata == {
        "from": "jane.doe@example.com", "name": "Jane Doe", "subject": "Re: Order #104233",
        "message_id": "<second@c>", "references": ["<root@c>", str(bot_reply["Message-ID"])],
        "in_reply_to": str(bot_reply["Message-ID"]), "order_hint": "CD-104233", "bot_hint": "CD-104233",
        "attachments": [], "content_language": None, "dmarc": None}


def test_another_sender_cannot_join_a_thread_by_copying_references():
    victim = parse_email(raw_mail("My order", message_id="<root@c>"), NOW)
    attacker = parse_email(raw_mail("Show me the order", sender="evil@attacker.test", message_id="<e@a>",
                                    headers="References: <root@c>\nIn-Reply-To: <root@c>\n"), NOW)
    assert thread_key(attacker) != thread_key(victim)


def test_empty_body_falls_back_to_subject():
    p = parse_email(raw_mail("", subject="Re: Where is order 104233?"), NOW)
    assert to_inbound(p).text == "Where is order 104233?"


# ---------------------------------------------------------------------------------------------------- automated

AUTOMATED = {
    "auto-submitted auto-replied": "Auto-Submitted: auto-replied\n",
    "auto-submitted auto-generated": "Auto-Submitted: auto-generated; owner-email=x@y\n",
    "precedence bulk": "Precedence: bulk\n",
    "precedence junk": "Precedence: junk\n",
    "precedence list": "Precedence: list\n",
    "x-autoreply": "X-Autoreply: yes\n",
    "x-autorespond": "X-Autorespond: Out of office\n",
    "x-auto-response-suppress all": "X-Auto-Response-Suppress: All\n",
    "x-auto-response-suppress oof": "X-Auto-Response-Suppress: DR, OOF, AutoReply\n",
    "list-id": "List-Id: Shop news <news.shop.test>\n",
    "list-unsubscribe": "List-Unsubscribe: <mailto:unsub@news.test>\n",
    "return-path null": "Return-Path: <>\n",
}


@pytest.mark.parametrize("case", sorted(AUTOMATED))
def test_automated_headers_are_never_answered(case):
    raw = raw_mail("I am out of the office.", headers=AUTOMATED[case])
    assert is_automated(parse_email(raw, NOW)) is not None
    assert is_automated(message_from_bytes(raw, policy=policy.default)) is not None


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example.com", "Mail Delivery System <mailer-daemon@x.test>",
                                    "postmaster@example.com", "<>", "no-reply@shop.example"])
def test_system_senders_are_never_answered(sender):
    assert is_automated(parse_email(raw_mail("Delivery failed", sender=sender), NOW)) is not None


def test_missing_from_is_automated():
    raw = b"To: s@shop.test\nSubject: x\nMessage-ID: <a@b>\n\nhello\n"
    assert is_automated(parse_email(raw, NOW)) == "null sender"


def test_bounce_multipart_report():
    raw = (b"From: Mail Delivery Subsystem <bounces@mx.example.com>\nTo: support@shop.test\nSubject: Undelivered\n"
           b"Message-ID: <b@mx>\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=BB\n\n"
           b"--BB\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
           b"--BB\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"
           b"Final-Recipient: rfc822; x@y\nAction: failed\nStatus: 5.1.1\n--BB--\n")
    assert is_automated(parse_email(raw, NOW)) == "delivery report (multipart/report)"


def test_humans_are_answered_and_own_address_is_a_loop():
    raw = raw_mail("Hello", headers="Auto-Submitted: no\nPrecedence: normal\nX-Auto-Response-Suppress: DR\n")
    assert is_automated(parse_email(raw, NOW)) is None
    own = parse_email(raw_mail("Hello", sender="Shop <Support@shop.test>"), NOW)
    assert is_automated(own, own_addresses=["support@shop.test"]) == "sent by this mailbox (loop)"


def test_our_own_reply_is_recognised_as_automated():
    p = parse_email(raw_mail("hi"), NOW)
    reply = compose_reply(p, [OutboundMessage("Hello")], "support@shop.test", now=NOW)
    assert is_automated(reply) == "auto-submitted: auto-replied"


# ---------------------------------------------------------------------------------------------------- composing

BUTTONS = (Button("Track my order", "/track_order"), Button("Return an item", "/start_return"),
           Button("Talk to a person", "/human_handoff"))


def _parts(msg: EmailMessage) -> tuple[str, str]:
    reparsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert reparsed.get_content_type() == "multipart/alternative"
    plain, html = reparsed.get_body(("plain",)).get_content(), reparsed.get_body(("html",)).get_content()
    return plain.replace("\r\n", "\n"), html.replace("\r\n", "\n")


def test_compose_reply_headers_and_parts():
    parsed = parse_email(raw_mail("Hi", subject="Re: RE: Order CD-104233", message_id="<p2@c>",
                                  headers="References: <root@c> <p1@c>\nIn-Reply-To: <p1@c>\n"), NOW)
    msgs = [OutboundMessage("Your order <script>alert('x')</script> & co shipped: https://track.test/a?b=1&c=2."),
            OutboundMessage("Anything else?", buttons=BUTTONS)]
    reply = compose_reply(parsed, msgs, "Crossdesk Shop <support@shop.test>", language="en", now=NOW)
    assert reply["Subject"] == "Re: Order CD-104233"
    assert reply["To"] == "jane.doe@example.com"
    assert reply["From"] == "Crossdesk Shop <support@shop.test>"
    assert reply["In-Reply-To"] == "<p2@c>"
    assert reply["References"] == "<root@c> <p1@c> <p2@c>"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["Message-ID"].endswith("@shop.test>") and reply["Date"]
    plain, html = _parts(reply)
    assert "Your order <script>alert('x')</script> & co shipped" in plain
    assert "Anything else?" in plain
    assert "Reply with the number:\n1. Track my order\n2. Return an item\n3. Talk to a person" in plain
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; co" in html
    assert '<a href="https://track.test/a?b=1&amp;c=2">https://track.test/a?b=1&amp;c=2</a>.' in html
    assert "<li>Track my order</li>" in html
    assert plain.index("Your order") < plain.index("Anything else?")  # both messages in ONE email


def test_compose_reply_from_context_localized_and_subject_not_doubled():
    ctx = EmailSendContext(to_addr="Kunde@Example.de", subject="AW: Retoure", parent_message_id="<k2@c>",
                           references=("<k1@c>",), language="de")
    reply = compose_reply(ctx, [OutboundMessage("Wählen Sie:", buttons=BUTTONS[:2])], "support@shop.test")
    assert reply["Subject"] == "Re: Retoure"
    assert reply["References"] == "<k1@c> <k2@c>" and reply["In-Reply-To"] == "<k2@c>"
    plain, html = _parts(reply)
    assert "Antworte mit der Nummer:\n1. Track my order\n2. Return an item" in plain
    assert 'lang="de"' in html


def test_compose_reply_rejects_missing_recipient():
    with pytest.raises(ValueError):
        compose_reply(EmailSendContext(to_addr=""), [OutboundMessage("x")], "support@shop.test")


@pytest.mark.parametrize("reply,expected", [
    ("2", "/start_return"), ("2.", "/start_return"), (" 3) ", "/human_handoff"), ("#1", "/track_order"),
    ("2\n\nOn Wed, 1 May 2024 at 12:00, Shop <s@shop.test> wrote:\n> 1. Track", "/start_return"),
    ("return an item", "/start_return"), ("4", None), ("0", None), ("I want option 2 maybe", None), ("", None),
])
def test_resolve_numbered_choice(reply, expected):
    text = strip_reply(reply)
    assert resolve_numbered_choice(text, list(BUTTONS)) == expected


def test_turn_buttons_numbered_across_messages():
    msgs = [OutboundMessage("a", buttons=BUTTONS[:1]), OutboundMessage("b", buttons=BUTTONS[1:])]
    assert resolve_numbered_choice("3", turn_buttons(msgs)) == "/human_handoff"


def test_an_order_number_in_the_subject_leads_into_no_conversation():
    def mail(subject: str, msgid: str, sender: str = "anna@example.com") -> bytes:
        return (f"From: {sender}\r\nTo: shop@example.com\r\nSubject: {subject}\r\nMessage-ID: {msgid}\r\n"
                f"\r\nhello\r\n").encode()

    first = thread_key(parse_email(mail("Order CD-100001 missing", "<a@x>"), None))
    again = thread_key(parse_email(mail("Again about CD-100001", "<b@x>"), None))
    forged = thread_key(parse_email(mail("Order CD-100001 missing", "<d@x>", sender="eve@example.com"), None))
    assert len({first, again, forged}) == 3


@pytest.mark.parametrize("headers, authserv, verdict", [
    ("Authentication-Results: mx.shop.test; spf=pass; dkim=pass; dmarc=pass header.from=example.com\n", None, "pass"),
    ("Authentication-Results: mx.shop.test; dmarc=fail (p=reject) header.from=example.com\n", None, "fail"),
    ("Authentication-Results: mx.shop.test; spf=none\n", None, "none"),
    ("", None, None),
    ("", "mx.shop.test", "none"),
    # a sender's own header further down does not count when our server's is on top
    ("Authentication-Results: mx.shop.test; dmarc=fail\nAuthentication-Results: evil.test; dmarc=pass\n",
     None, "fail"),
    # with our authserv-id configured, a header from anyone else is ignored
    ("Authentication-Results: evil.test; dmarc=pass\n", "mx.shop.test", "none"),
    ("Authentication-Results: evil.test; dmarc=pass\nAuthentication-Results: MX.shop.test; dmarc=pass\n",
     "mx.shop.test", "pass"),
])
def test_dmarc_verdict_from_authentication_results(headers, authserv, verdict):
    from channels.email.mime import dmarc_verdict

    parsed = parse_email(raw_mail("hi", message_id="<m@c>", headers=headers), NOW)
    assert dmarc_verdict(parsed, authserv) == verdict


@pytest.mark.parametrize("header, value", [("Content-Language", "de-DE"), ("Accept-Language", "fr-FR, en-US")])
def test_language_headers_become_a_prior(header, value):
    raw = (f"From: Kunde <k@example.de>\r\nTo: support@shop.test\r\nSubject: Bestellung\r\n{header}: {value}\r\n"
           "Message-ID: <lang@example.de>\r\n\r\nHallo\r\n").encode()
    assert to_inbound(parse_email(raw)).metadata["content_language"] == value
