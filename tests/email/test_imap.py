"""ImapPoller against a REAL Dovecot IMAP server (see conftest.py)."""
from __future__ import annotations

import asyncio

import pytest

from channels.email.api import make_raw_acceptor
from channels.email.imap import FAILED_KEYWORD, ImapPoller
from channels.email.mime import parse_email


def mail(subject: str, body: str = "Hello", headers: str = "", sender: str = "jane@example.com") -> bytes:
    return (f"From: {sender}\nTo: shop@crossdesk.test\nSubject: {subject}\nMessage-ID: <{subject}@client>\n"
            f"{headers}Content-Type: text/plain; charset=utf-8\n\n{body}\n").encode()


def poller(server, **kw) -> ImapPoller:
    return ImapPoller(server.host, server.port, server.user, server.password, **kw)


def test_poll_fetches_unseen_and_marks_seen_after_accept(dovecot, mailbox):
    mailbox.deliver(mail("one", "Größe 42 bitte"))
    mailbox.deliver(mail("two"))
    got: list[bytes] = []

    async def accept(raw: bytes) -> None:
        assert "\\Seen" not in mailbox.flags()[parse_email(raw).subject]  # not marked before accept returned
        got.append(raw)

    async def main():
        p = poller(dovecot)
        try:
            first = await p.poll_once(accept)
            second = await p.poll_once(accept)  # nothing new
            return first, second
        finally:
            await p.aclose()

    assert asyncio.run(main()) == (2, 0)
    assert sorted(parse_email(r).subject for r in got) == ["one", "two"]
    assert parse_email(got[0]).text in ("Größe 42 bitte", "Hello")
    assert all("\\Seen" in flags for flags in mailbox.flags().values())


def test_message_is_not_lost_when_accept_raises(dovecot, mailbox):
    mailbox.deliver(mail("fails-once"))
    mailbox.deliver(mail("fine"))
    calls: list[str] = []

    async def flaky(raw: bytes) -> None:
        subject = parse_email(raw).subject
        calls.append(subject)
        if subject == "fails-once" and calls.count(subject) == 1:
            raise RuntimeError("inbox database is down")

    async def main():
        p = poller(dovecot)
        try:
            first = await p.poll_once(flaky)
            flags_between = mailbox.flags()
            second = await p.poll_once(flaky)
            return first, flags_between, second
        finally:
            await p.aclose()

    first, between, second = asyncio.run(main())
    assert first == 1 and "\\Seen" not in between["fails-once"] and "\\Seen" in between["fine"]
    assert second == 1 and calls.count("fails-once") == 2
    assert all("\\Seen" in flags for flags in mailbox.flags().values())


def test_poison_message_is_tagged_and_left_unseen(dovecot, mailbox):
    mailbox.deliver(mail("poison"))

    async def broken(raw: bytes) -> None:
        raise ValueError("cannot store")

    async def main():
        p = poller(dovecot, max_attempts=2)
        try:
            return [await p.poll_once(broken) for _ in range(3)]
        finally:
            await p.aclose()

    assert asyncio.run(main()) == [0, 0, 0]
    flags = mailbox.flags()["poison"]
    assert FAILED_KEYWORD in flags and "\\Seen" not in flags


def test_raw_acceptor_skips_automated_mail_but_marks_it_seen(dovecot, mailbox):
    mailbox.deliver(mail("human #104233", "Where is it?"))
    mailbox.deliver(mail("ooo", "I am away", headers="Auto-Submitted: auto-replied\n"))
    mailbox.deliver(mail("bounce", "failed", sender="MAILER-DAEMON@mx.example.com"))
    mailbox.deliver(mail("list", "news", headers="List-Id: <news.example.com>\n"))
    inbox: list = []

    async def inbox_accept(inbound):
        inbox.append(inbound)

    async def main():
        p = poller(dovecot)
        try:
            return await p.poll_once(make_raw_acceptor(inbox_accept, own_addresses=["shop@crossdesk.test"]))
        finally:
            await p.aclose()

    assert asyncio.run(main()) == 4
    assert [m.metadata["subject"] for m in inbox] == ["human #104233"]
    assert inbox[0].metadata["order_hint"] == "CD-104233" and inbox[0].channel == "email"
    assert all("\\Seen" in flags for flags in mailbox.flags().values())


def test_wrong_password_and_run_loop_reconnects(dovecot, mailbox):
    async def noop(raw: bytes) -> None:
        pass

    bad = ImapPoller(dovecot.host, dovecot.port, dovecot.user, "wrong")
    with pytest.raises(Exception):
        asyncio.run(bad.poll_once(noop))

    mailbox.deliver(mail("looped"))
    seen: list[bytes] = []

    async def accept(raw: bytes) -> None:
        seen.append(raw)

    async def main():
        p = poller(dovecot)
        await p.poll_once(accept)
        p._conn.shutdown()  # the server connection dies under the poller
        mailbox.deliver(mail("after-drop"))
        task = asyncio.create_task(p.run(accept, interval_s=0.05))
        for _ in range(200):
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert [parse_email(r).subject for r in seen] == ["looped", "after-drop"]
