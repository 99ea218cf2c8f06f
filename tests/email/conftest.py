"""Real mail servers on loopback for the email channel tests.

- ``dovecot``: a REAL Dovecot IMAP server (Debian's /usr/sbin/dovecot, package dovecot-imapd) started once per
  session from a minimal config in a temporary directory, listening on 127.0.0.1 on a free port, plaintext
  auth, one static test user, Maildir storage. If Dovecot is missing the tests FAIL (bin/test installs it).
  As root, Dovecot refuses mail access as uid 0 and login processes as root, so mail runs as ``nobody`` inside
  a mail chroot and login processes as Dovecot's own unprivileged users; as a normal user, everything runs as
  that user without chroots.
- ``mailbox``: a clean INBOX for one test (everything expunged), plus ``deliver(raw)`` (IMAP APPEND) and
  helpers to read flags.
- ``smtp_server``: an aiosmtpd Controller on 127.0.0.1 (free port) capturing every message it receives.
"""
from __future__ import annotations

import getpass
import grp
import imaplib
import os
import pwd
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOVECOT = "/usr/sbin/dovecot"
IMAP_USER, IMAP_PASSWORD = "shop@crossdesk.test", "imap-test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log_path: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dovecot exited with {proc.returncode}:\n{_read(log_path)}\n{proc.stdout.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(200).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"dovecot did not answer on 127.0.0.1:{port} within {timeout}s:\n{_read(log_path)}")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-4000:]
    except OSError:
        return "(no log)"


def dovecot_config(root: Path, port: int) -> str:
    log = root / "dovecot.log"
    common = f"""protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {log}
info_log_path = {log}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_fsync = never
passdb {{
  driver = static
  args = password={IMAP_PASSWORD}
}}
"""
    listener = f"""  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
"""
    if os.geteuid() == 0:
        # Mail processes may not run as root: run them as nobody, chrooted into the mail home.
        mail_home = root / "mail"
        mail_home.mkdir()
        nobody = pwd.getpwnam("nobody")
        os.chown(mail_home, nobody.pw_uid, nobody.pw_gid)
        return common + f"""first_valid_uid = 1
valid_chroot_dirs = {root}
mail_location = maildir:~/Maildir
userdb {{
  driver = static
  args = uid={nobody.pw_uid} gid={nobody.pw_gid} home={mail_home}/./
}}
service imap-login {{
{listener}}}
"""
    user = getpass.getuser()
    group = grp.getgrgid(os.getgid()).gr_name
    return common + f"""default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {os.getuid()}
first_valid_gid = {os.getgid()}
mail_location = maildir:{root}/Maildir
userdb {{
  driver = static
  args = uid={os.getuid()} gid={os.getgid()} home={root}/home
}}
service imap-login {{
  chroot =
{listener}}}
service anvil {{
  chroot =
}}
"""


@dataclass
class DovecotServer:
    host: str
    port: int
    user: str
    password: str
    root: Path

    def connect(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(self.user, self.password)
        conn.select("INBOX")
        return conn


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory) -> Iterator[DovecotServer]:
    if not (os.path.exists(DOVECOT) and os.access(DOVECOT, os.X_OK)):
        pytest.fail(f"{DOVECOT} not found: the email channel tests need a real IMAP server. "
                    "Install Debian's dovecot-imapd (apt-get install dovecot-imapd; bin/test does this).",
                    pytrace=False)
    root = tmp_path_factory.mktemp("dovecot")
    port = free_port()
    conf = root / "dovecot.conf"
    conf.write_text(dovecot_config(root, port))
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        wait_for_port(port, proc, root / "dovecot.log")
        yield DovecotServer("127.0.0.1", port, IMAP_USER, IMAP_PASSWORD, root)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()


@dataclass
class Mailbox:
    server: DovecotServer
    conns: list = field(default_factory=list)

    def _conn(self) -> imaplib.IMAP4:
        if not self.conns:
            self.conns.append(self.server.connect())
        return self.conns[0]

    def deliver(self, raw: bytes) -> None:
        typ, data = self._conn().append("INBOX", None, None, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        assert typ == "OK", data

    def flags(self) -> dict[str, set[str]]:
        """Subject -> flags of every message in INBOX."""
        conn = self._conn()
        conn.noop()
        typ, data = conn.uid("SEARCH", None, "ALL")
        assert typ == "OK", data
        out: dict[str, set[str]] = {}
        for uid in data[0].split():
            # Untagged FETCH responses about other messages (flag changes made by the poller's connection) may
            # arrive in the same answer: pick the item that names this UID.
            typ, flag_data = conn.uid("FETCH", uid, "(UID FLAGS)")
            item = next(i for i in flag_data if isinstance(i, bytes) and re.search(rb"UID %s\b" % uid, i))
            flags = {f.decode() for f in imaplib.ParseFlags(item)}
            typ, header_data = conn.uid("FETCH", uid, "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            header = next(i[1] for i in header_data if isinstance(i, tuple) and re.search(rb"UID %s\b" % uid, i[0]))
            subject = header.decode().split(":", 1)[1].strip() if b":" in header else ""
            out[subject] = flags
        return out

    def clear(self) -> None:
        conn = self._conn()
        conn.uid("STORE", "1:*", "+FLAGS.SILENT", "(\\Deleted)")
        conn.expunge()

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.logout()
            except Exception:
                pass


@pytest.fixture
def mailbox(dovecot) -> Iterator[Mailbox]:
    box = Mailbox(dovecot)
    box.clear()
    try:
        yield box
    finally:
        box.clear()
        box.close()


class _Capture:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                              "data": envelope.original_content or envelope.content})
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: _Capture

    @property
    def messages(self) -> list[dict]:
        return self.handler.messages


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    from aiosmtpd.controller import Controller

    handler = _Capture()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


WEBHOOK_AUTH = ("postmark", "s3cret-webhook-password")


@pytest.fixture(autouse=True)
def _webhook_auth(monkeypatch):
    """The email webhook refuses everything without credentials: tests configure them (and nothing else)."""
    from crm import config

    for name in ("SMTP_FROM", "IMAP_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EMAIL_WEBHOOK_USER", WEBHOOK_AUTH[0])
    monkeypatch.setenv("EMAIL_WEBHOOK_PASSWORD", WEBHOOK_AUTH[1])
    config.get_settings.cache_clear()
    yield
    config.get_settings.cache_clear()

