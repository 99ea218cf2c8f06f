"""Email end to end: mail lands in a real Dovecot mailbox, the app polls it by IMAP, answers by SMTP."""
from __future__ import annotations

import email
import time
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import make_msgid

import pytest

from tests.e2e.conftest import SUPPORT_ADDRESS

pytestmark = pytest.mark.e2e


def deliver(dovecot, *, subject: str, body: str, sender: str = "Anna Schmidt <anna.schmidt@example.com>",
            in_reply_to: str | None = None, references: str | None = None, headers: dict | None = None) -> str:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, SUPPORT_ADDRESS, subject
    msg["Message-ID"] = make_msgid(domain="mail.example.com")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    conn = dovecot.connect()
    try:
        conn.append("INBOX", "", None, msg.as_bytes())
    finally:
        conn.logout()
    return msg["Message-ID"]


def wait_for_mail(handler, count: int, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(handler.messages) >= count:
            return [email.message_from_bytes(m["data"], policy=default_policy) for m in handler.messages]
        time.sleep(0.25)
    raise AssertionError(f"{len(handler.messages)} emails sent, expected {count}")


def body_text(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content().lower()


def test_email_thread_verification_and_tracking(live_stack, dovecot, smtp_capture):
    _, handler = smtp_capture
    before = len(handler.messages)
    first_id = deliver(dovecot, subject="Where is my order CD-100002?",
                       body="Hello, where is my order?\n\nThanks\n-- \nOliver Bennett\nSent from my phone",
                       sender="Oliver Bennett <oliver.bennett@example.com>")
    reply = wait_for_mail(handler, before + 1)[-1]
    assert reply["In-Reply-To"] == first_id and first_id in reply["References"]
    assert reply["Subject"] == "Re: Where is my order CD-100002?"
    assert reply["Auto-Submitted"] == "auto-replied" and reply["To"].addresses[0].addr_spec == "oliver.bennett@example.com"
    assert reply.get_body(preferencelist=("html",)) is not None  # plain and HTML parts
    assert "email address or phone number" in body_text(reply)  # an email From proves nothing
    # the answer continues the same conversation (thread), quoting our mail below
    quoted = "\n".join("> " + line for line in body_text(reply).splitlines())
    deliver(dovecot, subject="Re: Where is my order CD-100002?",
            body=f"oliver.bennett@example.com\n\nOn Tue, crossdesk wrote:\n{quoted}",
            sender="Oliver Bennett <oliver.bennett@example.com>", in_reply_to=reply["Message-ID"],
            references=f"{first_id} {reply['Message-ID']}")
    second = wait_for_mail(handler, before + 2)[-1]
    text = body_text(second)
    assert "import customs" in text and "verified" in text, text  # all bot messages of the turn in one email
    assert second["In-Reply-To"] == reply["Message-ID"] or first_id in second["References"]
    # The forged-From attack: the victim's address, the order number in the subject, the victim's own first
    # Message-ID — but no reference we issued. It lands in a new conversation that must verify: no order data.
    deliver(dovecot, subject="Re: Where is my order CD-100002?", body="Where is it now? Send tracking please.",
            sender="Oliver Bennett <oliver.bennett@example.com>", in_reply_to=first_id, references=first_id)
    forged = wait_for_mail(handler, before + 3)[-1]
    text = body_text(forged)
    assert "import customs" not in text and "email address or phone number" in text, text


def test_auto_replies_and_lists_are_never_answered(live_stack, dovecot, smtp_capture):
    _, handler = smtp_capture
    before = len(handler.messages)
    deliver(dovecot, subject="Out of office", body="I am away until Monday.",
            headers={"Auto-Submitted": "auto-replied"})
    deliver(dovecot, subject="Newsletter", body="Our deals", headers={"Precedence": "bulk", "List-Id": "<deals.example>"})
    deliver(dovecot, subject="Delivery Status Notification", body="Undeliverable",
            sender="MAILER-DAEMON@mail.example.com")
    # a normal mail after them is answered, so the poller did read past the three
    deliver(dovecot, subject="Hello", body="hi there", sender="someone@example.org")
    replies = wait_for_mail(handler, before + 1)
    time.sleep(3)
    assert len(handler.messages) == before + 1
    assert replies[-1]["To"].addresses[0].addr_spec == "someone@example.org"
