"""SmtpSender against a real SMTP server (aiosmtpd on loopback)."""
from __future__ import annotations

import asyncio
from email import message_from_bytes, policy

from channels.core.messages import Button, OutboundMessage
from channels.email.mime import is_automated, parse_email, thread_key
from channels.email.smtp import EmailSendContext, SmtpSender

RAW = (b"From: Jane <jane@example.com>\nTo: support@shop.test\nSubject: Order 104233\n"
       b"Message-ID: <q1@client>\n\nWhere is it?\n")


def test_one_email_per_turn_with_threading_headers(smtp_server):
    parsed = parse_email(RAW)
    ctx = EmailSendContext.from_parsed(parsed, language="en")
    sender = SmtpSender(smtp_server.host, smtp_server.port, "Shop <support@shop.test>")
    messages = [OutboundMessage("It shipped yesterday."),
                OutboundMessage("Anything else?", buttons=(Button("Return", "/start_return"),))]
    results = asyncio.run(sender.send(thread_key(parsed), messages, ctx))
    assert [r.ok for r in results] == [True, True]
    assert len({r.external_id for r in results}) == 1
    assert len(smtp_server.messages) == 1  # ONE email for the whole turn
    got = smtp_server.messages[0]
    assert got["mail_from"] == "support@shop.test" and got["rcpt_tos"] == ["jane@example.com"]
    mail = message_from_bytes(got["data"], policy=policy.default)
    assert mail["Subject"] == "Re: Order 104233"
    assert mail["In-Reply-To"] == "<q1@client>" and mail["References"] == "<q1@client>"
    assert mail["Message-ID"] == results[0].external_id
    assert mail["Auto-Submitted"] == "auto-replied"
    body = mail.get_body(("plain",)).get_content()
    assert "It shipped yesterday." in body and "1. Return" in body
    assert is_automated(mail)  # our own replies can never trigger another reply


def test_context_from_inbound_metadata(smtp_server):
    from channels.email.mime import to_inbound

    inbound = to_inbound(parse_email(RAW))
    ctx = EmailSendContext.from_inbound(inbound, language="fr")
    assert ctx == EmailSendContext("jane@example.com", "Order 104233", "<q1@client>", (), "fr")
    sender = SmtpSender(smtp_server.host, smtp_server.port, "support@shop.test")
    results = asyncio.run(sender.send(inbound.sender_id, [OutboundMessage("Bonjour", buttons=(Button("Oui", "/y"),))],
                                      ctx))
    assert results[0].ok
    mail = message_from_bytes(smtp_server.messages[0]["data"], policy=policy.default)
    assert "Répondez avec le numéro" in mail.get_body(("plain",)).get_content()


def test_failures_are_reported_not_raised(smtp_server):
    sender = SmtpSender(smtp_server.host, smtp_server.port, "support@shop.test")
    results = asyncio.run(sender.send("t", [OutboundMessage("x")], EmailSendContext(to_addr="not-an-address")))
    assert results[0].ok is False and not results[0].retryable
    assert asyncio.run(sender.send("t", [], EmailSendContext(to_addr="a@example.com"))) == []
    # nothing listening: temporary failure
    from tests.email.conftest import free_port

    down = SmtpSender("127.0.0.1", free_port(), "support@shop.test", timeout_s=2)
    results = asyncio.run(down.send("t", [OutboundMessage("x"), OutboundMessage("y")],
                                    EmailSendContext(to_addr="a@example.com")))
    assert len(results) == 2 and all(not r.ok and r.retryable for r in results)
    assert smtp_server.messages == []
