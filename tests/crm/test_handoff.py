"""Handing conversations to humans and back."""
from __future__ import annotations

from sqlalchemy import func, select

from crm.conversations.models import Conversation
from crm.conversations.service import get_or_create
from crm.handoff.models import HandoffRequest
from crm.handoff.service import close_request, expected_wait, list_requests, request_handoff
from tests.crm.factories import utc

NOW = utc(2026, 3, 5, 10, 0)


def _conv(session, external_id):
    conv = get_or_create(session, "web", external_id, NOW)
    session.flush()
    return conv


def test_request_puts_conversation_in_handoff(session):
    conv = _conv(session, "a")
    assert conv.mode == "bot"
    ticket = request_handoff(session, conv, "asked", "wants a human " * 100, NOW)
    session.commit()
    session.expire_all()
    assert ticket.already_open is False and ticket.expected_wait_minutes == 15
    req = session.get(HandoffRequest, ticket.request.id)
    assert (req.status, req.reason, req.conversation_id, req.created_at, req.closed_at) == (
        "open", "asked", conv.id, NOW, None)
    assert len(req.note) == 500
    assert session.get(Conversation, conv.id).mode == "handoff"


def test_second_request_returns_the_open_one(session):
    conv = _conv(session, "a")
    first = request_handoff(session, conv, "asked", "", NOW)
    again = request_handoff(session, conv, "repeated_fallback", "", utc(2026, 3, 5, 10, 5))
    assert again.already_open is True and again.request.id == first.request.id
    assert again.request.reason == "asked"
    session.flush()
    assert session.scalar(select(func.count(HandoffRequest.id))) == 1


def test_expected_wait_grows_with_queue(session):
    tickets = [request_handoff(session, _conv(session, name), "asked", "", NOW) for name in "abc"]
    assert [t.expected_wait_minutes for t in tickets] == [15, 18, 21]
    assert expected_wait(session) == 24
    assert expected_wait(session, base_minutes=5) == 14
    # asking again does not move you back in the queue
    assert request_handoff(session, tickets[0].request.conversation, "asked", "", NOW).expected_wait_minutes == 15
    assert request_handoff(session, tickets[2].request.conversation, "asked", "", NOW).expected_wait_minutes == 21
    # once the first is closed, everyone behind moves up
    close_request(session, tickets[0].request.id, NOW)
    session.flush()
    assert request_handoff(session, tickets[2].request.conversation, "asked", "", NOW).expected_wait_minutes == 18
    assert expected_wait(session) == 21


def test_close_returns_conversation_to_bot(session):
    conv = _conv(session, "a")
    ticket = request_handoff(session, conv, "asked", "", NOW)
    session.commit()
    closed_at = utc(2026, 3, 5, 10, 30)
    req = close_request(session, ticket.request.id, closed_at)
    session.commit()
    session.expire_all()
    req = session.get(HandoffRequest, req.id)
    assert (req.status, req.closed_at) == ("closed", closed_at)
    assert session.get(Conversation, conv.id).mode == "bot"
    assert list_requests(session) == []
    assert [r.id for r in list_requests(session, status="closed")] == [req.id]
    assert [r.id for r in list_requests(session, status=None)] == [req.id]
    # a new request after closing opens a fresh one
    new = request_handoff(session, session.get(Conversation, conv.id), "asked", "", closed_at)
    assert new.already_open is False and new.request.id != req.id and new.expected_wait_minutes == 15


def test_close_unknown_request(session):
    assert close_request(session, 12345, NOW) is None
