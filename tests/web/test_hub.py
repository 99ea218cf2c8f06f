"""The web chat's output adapter: a message sent to a web conversation from outside the shopper's turn reaches
every open tab of that session — in this process, and across app processes through Redis pub/sub. Real
WebSockets (Starlette's test client), the real outbound layer, the real database and Redis."""
from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from fastapi import FastAPI
from fastapi.testclient import TestClient

from channels.core.limits import InputLimits
from channels.core.messages import Button, OutboundMessage
from channels.core.outbound import ChannelAdapter, Outbound
from channels.web.api import router
from channels.web.hub import WebHub
from crm.config import settings_from


def make_app(redis_url: str | None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.web_hub = WebHub(redis_url)
        await app.state.web_hub.start()
        app.state.outbound = Outbound()
        app.state.outbound.register("web", ChannelAdapter(app.state.web_hub, in_process=True))
        app.state.limits = InputLimits(settings_from({}))
        yield
        await app.state.web_hub.aclose()

    app = FastAPI(lifespan=lifespan)
    app.include_router(router)
    return app


def _conversation(session_id: str) -> int:
    from crm.conversations import service as conversations
    from crm.db import unit_of_work

    with unit_of_work() as session:
        conv = conversations.get_or_create(session, "web", session_id, datetime.now(timezone.utc))
        session.flush()
        return conv.id


def _session() -> str:
    return uuid.uuid4().hex + "abcd"


def test_a_message_from_outside_the_turn_reaches_every_tab_of_the_session_only(app_db):
    mine, other = _session(), _session()
    conv_id = _conversation(mine)
    app = make_app(None)
    with TestClient(app) as client:
        with client.websocket_connect(f"/ws/chat?session={mine}") as tab1, \
                client.websocket_connect(f"/ws/chat?session={mine}") as tab2, \
                client.websocket_connect(f"/ws/chat?session={other}") as stranger:
            message = OutboundMessage("Hi, this is Ana from support.", (Button("Yes", "/affirm"),), author="agent")
            ids = client.portal.call(app.state.outbound.send, conv_id, [message], "agent")
            for tab in (tab1, tab2):
                frame = tab.receive_json()
                assert (frame["type"], frame["author"], frame["text"]) == ("message", "agent", message.text)
                assert frame["buttons"] == [{"title": "Yes", "payload": "/affirm"}]
            # the other session's socket got nothing: its next frame is the answer to its own bad frame
            stranger.send_text("not json")
            assert stranger.receive_json()["type"] == "error"
    from crm.conversations.models import Message
    from crm.db import unit_of_work

    with unit_of_work() as session:
        row = session.get(Message, ids[0])
        assert (row.direction, row.author, row.delivery_status) == ("out", "agent", "sent")


def test_across_app_processes_through_redis(app_db):
    import os

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    mine = _session()
    conv_id = _conversation(mine)
    sender_app, socket_app = make_app(url), make_app(url)
    with TestClient(sender_app) as sender, TestClient(socket_app) as holder:
        with holder.websocket_connect(f"/ws/chat?session={mine}") as tab:
            sender.portal.call(sender_app.state.outbound.send, conv_id, [OutboundMessage("from process A")], "agent")
            assert tab.receive_json()["text"] == "from process A"
