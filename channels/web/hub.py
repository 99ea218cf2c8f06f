"""The web chat's output adapter: every outbound message for a web session is pushed to every socket that
session has open — each tab, in this process or (through Redis pub/sub, when REDIS_URL is set) in any other
app process. Whatever is pushed is also in the transcript, so a tab that opens later shows it on load."""
from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import redis.asyncio as aioredis
from fastapi import WebSocket

from channels.core.messages import OutboundMessage

log = logging.getLogger("crossdesk.web")
CHANNEL_PREFIX = "crossdesk:web:"


def reply_frame(reply: OutboundMessage, ts: datetime | None = None) -> dict[str, Any]:
    return {"type": "message", "author": reply.author, "text": reply.text,
            "buttons": [{"title": b.title, "payload": b.payload} for b in reply.buttons],
            "ts": (ts or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat()}


@dataclass(frozen=True)
class PushResult:
    ok: bool
    error: str | None = None


class WebHub:
    def __init__(self, redis_url: str | None = None):
        self._sockets: dict[str, set[WebSocket]] = defaultdict(set)
        self._redis = aioredis.from_url(redis_url) if redis_url else None
        self._listener: asyncio.Task | None = None

    def attach(self, session: str, ws: WebSocket) -> None:
        self._sockets[session].add(ws)

    def detach(self, session: str, ws: WebSocket) -> None:
        sockets = self._sockets.get(session)
        if sockets is not None:
            sockets.discard(ws)
            if not sockets:
                del self._sockets[session]

    def open_sockets(self, session: str) -> int:
        return len(self._sockets.get(session, ()))

    async def start(self) -> None:
        if self._redis is not None and self._listener is None:
            pubsub = self._redis.pubsub()
            await pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
            self._listener = asyncio.create_task(self._listen(pubsub), name="web-hub")

    async def _listen(self, pubsub) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (aioredis.ConnectionError, OSError):
                log.warning("web hub: redis unreachable; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            if not message:
                continue
            channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
            await self._push_local(channel[len(CHANNEL_PREFIX):], json.loads(message["data"]))

    async def _push_local(self, session: str, frames: list[dict]) -> int:
        delivered = 0
        for ws in list(self._sockets.get(session, ())):
            try:
                for frame in frames:
                    await ws.send_json(frame)
                delivered += 1
            except Exception:  # a socket that closed under us: forget it, the others still get the message
                self.detach(session, ws)
        return delivered

    async def send(self, recipient_id: str, messages: list[OutboundMessage], ctx: Any) -> list[PushResult]:
        """Output adapter protocol (channels/core/outbound.py): push, one result per message."""
        frames = [reply_frame(m) for m in messages]
        if self._redis is not None:
            await self._redis.publish(f"{CHANNEL_PREFIX}{recipient_id}", json.dumps(frames))
        else:
            await self._push_local(recipient_id, frames)
        return [PushResult(True) for _ in messages]

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
        if self._redis is not None:
            await self._redis.aclose()
