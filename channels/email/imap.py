"""Polling a mailbox over IMAP (stdlib imaplib in a worker thread). Nothing is lost: a message is flagged
\\Seen only after ``accept`` returned; if ``accept`` raises, the message stays unseen and is retried on the next
poll. A message whose ``accept`` keeps failing is tagged with the keyword ``$CrossdeskFailed`` (still unseen, so
a person sees it in the mailbox) and no longer retried."""
from __future__ import annotations

import asyncio
import imaplib
import logging
import re
from collections.abc import Awaitable, Callable

log = logging.getLogger("crossdesk.email.imap")

Accept = Callable[[bytes], Awaitable[object]]
FAILED_KEYWORD = "$CrossdeskFailed"


def _quote_mailbox(name: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.\-/]+", name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapError(RuntimeError):
    pass


class ImapPoller:
    def __init__(self, host: str, port: int, username: str, password: str, mailbox: str = "INBOX",
                 ssl: bool = False, timeout_s: float = 30.0, max_attempts: int = 5):
        self.host, self.port, self.username, self.password = host, int(port), username, password
        self.mailbox, self.ssl, self.timeout_s, self.max_attempts = mailbox, ssl, timeout_s, max_attempts
        self._conn: imaplib.IMAP4 | None = None
        self._lock = asyncio.Lock()
        self._failures: dict[bytes, int] = {}  # uid -> failed accept attempts (this process)

    # --- blocking helpers (run in a thread) ---
    def _connect(self) -> imaplib.IMAP4:
        if self._conn is not None:
            return self._conn
        if self.ssl:
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(self.host, self.port, timeout=self.timeout_s)
        else:
            conn = imaplib.IMAP4(self.host, self.port, timeout=self.timeout_s)
        try:
            conn.login(self.username, self.password)
            typ, data = conn.select(_quote_mailbox(self.mailbox))
            if typ != "OK":
                raise ImapError(f"cannot select mailbox {self.mailbox!r}: {data!r}")
        except Exception:
            try:
                conn.shutdown()
            except Exception:
                pass
            raise
        self._conn = conn
        return conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.logout()
        except Exception:
            try:
                conn.shutdown()
            except Exception:
                pass

    def _search_unseen(self) -> list[bytes]:
        conn = self._connect()
        conn.noop()  # lets the server report new messages in the selected mailbox
        typ, data = conn.uid("SEARCH", None, "UNSEEN", "UNKEYWORD", FAILED_KEYWORD)
        if typ != "OK":
            raise ImapError(f"UID SEARCH failed: {data!r}")
        return [uid for uid in (data[0] or b"").split() if uid]

    def _fetch(self, uid: bytes) -> bytes | None:
        typ, data = self._connect().uid("FETCH", uid, "(BODY.PEEK[])")  # PEEK: does not set \Seen
        if typ != "OK":
            raise ImapError(f"UID FETCH {uid!r} failed: {data!r}")
        for item in data or []:
            if isinstance(item, tuple) and len(item) >= 2 and isinstance(item[1], (bytes, bytearray)):
                return bytes(item[1])
        return None  # expunged meanwhile

    def _store(self, uid: bytes, flags: str) -> None:
        typ, data = self._connect().uid("STORE", uid, "+FLAGS", flags)
        if typ != "OK":
            raise ImapError(f"UID STORE {uid!r} {flags} failed: {data!r}")

    # --- async API ---
    async def poll_once(self, accept: Accept) -> int:
        """Hand every unseen message to ``accept``; returns how many were accepted (and flagged \\Seen).

        IMAP/connection errors propagate (the connection is dropped, ``run`` reconnects with backoff); an error
        raised by ``accept`` is logged and leaves that message unseen for the next poll.
        """
        async with self._lock:
            try:
                uids = await asyncio.to_thread(self._search_unseen)
                accepted = 0
                for uid in uids:
                    raw = await asyncio.to_thread(self._fetch, uid)
                    if raw is None:
                        continue
                    try:
                        await accept(raw)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        attempts = self._failures.get(uid, 0) + 1
                        self._failures[uid] = attempts
                        log.exception("accept failed for IMAP uid %s (attempt %d); left unseen", uid, attempts)
                        if attempts >= self.max_attempts:
                            log.error("giving up on IMAP uid %s after %d attempts; tagged %s", uid, attempts,
                                      FAILED_KEYWORD)
                            await asyncio.to_thread(self._store, uid, f"({FAILED_KEYWORD})")
                            self._failures.pop(uid, None)
                        continue
                    self._failures.pop(uid, None)
                    await asyncio.to_thread(self._store, uid, "(\\Seen)")
                    accepted += 1
                return accepted
            except (imaplib.IMAP4.error, OSError, ImapError, EOFError):
                await asyncio.to_thread(self._close)
                raise

    async def run(self, accept: Accept, interval_s: float = 30.0, max_backoff_s: float = 300.0) -> None:
        """Poll forever (until cancelled); on errors reconnect with exponential backoff."""
        backoff = 1.0
        try:
            while True:
                try:
                    count = await self.poll_once(accept)
                    if count:
                        log.info("accepted %d email(s) from %s@%s", count, self.username, self.host)
                    backoff = 1.0
                    await asyncio.sleep(interval_s)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("IMAP poll of %s:%s failed (%s); retrying in %.0fs", self.host, self.port, exc,
                                backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(max_backoff_s, backoff * 2)
        finally:
            await asyncio.to_thread(self._close)

    async def aclose(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._close)
