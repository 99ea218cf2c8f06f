"""Input limits in one place, per channel: body size, message length, message rate.

Every edge and the pipeline ask `InputLimits`; nothing else holds a number. What differs per channel is
*where* an over-limit message is refused: REST and web chat refuse it at the edge with an error the client
shows (nothing is stored), while WhatsApp and email must give the provider its 200 — there the message is
stored first (an agent can still read it) and the shopper gets a polite reply in their language instead of
the bot (`Pipeline._limit_reply`).

Rates count per conversation and, where the connection tells us something the sender cannot rotate
(the web chat's client address), per client too: a flood from fresh session ids is still one client.
"""
from __future__ import annotations

from dataclasses import dataclass

from channels.core.ratelimit import make_rate_limiter

TOO_LONG, TOO_FAST = "too_long", "too_fast"
# What uvicorn accepts in one WebSocket message (`--ws-max-size`, bin/run and docker-compose.yml): the web
# chat's frame limit in characters, at up to 4 bytes each — a bigger frame is refused while it streams in.
WEB_FRAME_CHARS = 64 * 1024
WS_MAX_BYTES = 4 * WEB_FRAME_CHARS


@dataclass(frozen=True)
class ChannelLimits:
    channel: str
    max_body_bytes: int  # an HTTP request or WebSocket frame, checked while it streams in
    max_message_chars: int
    refused_at_edge: bool  # True: the edge answers an error; False: stored, then a polite reply
    per_client_factor: int = 0  # per-client rate = factor × per-conversation rate (0: not counted)


def channel_limits(settings) -> dict[str, ChannelLimits]:
    chars = settings.max_message_chars
    return {
        "rest": ChannelLimits("rest", 64 * 1024, chars, refused_at_edge=True),  # client: the shop's server
        "web": ChannelLimits("web", WEB_FRAME_CHARS, chars, refused_at_edge=True, per_client_factor=4),
        "whatsapp": ChannelLimits("whatsapp", 1024 * 1024, chars, refused_at_edge=False),
        # Postmark allows 35 MB messages; attachments arrive base64-encoded in the JSON.
        "email": ChannelLimits("email", 50 * 1024 * 1024, chars, refused_at_edge=False),
    }


class InputLimits:
    def __init__(self, settings, redis_url: str | None = None):
        self.channels = channel_limits(settings)
        window = settings.sender_rate_window_s
        self._per_conversation = make_rate_limiter(redis_url, settings.sender_rate_limit, window)
        self._per_client = {
            name: make_rate_limiter(redis_url, settings.sender_rate_limit * c.per_client_factor, window,
                                    prefix=f"crossdesk:rl-client:{name}")
            for name, c in self.channels.items() if c.per_client_factor}
        # At most one "slow down" notice per conversation and window (queued channels).
        self._notices = make_rate_limiter(redis_url, 1, window, prefix="crossdesk:rl-notice")

    def __getitem__(self, channel: str) -> ChannelLimits:
        return self.channels[channel]

    async def check(self, channel: str, text: str, conversation_key: str, client: str | None = None) -> str | None:
        """None if the message may go on; TOO_LONG or TOO_FAST otherwise (counts the message as sent)."""
        if len(text) > self.channels[channel].max_message_chars:
            return TOO_LONG
        if not await self._per_conversation.allow(conversation_key):
            return TOO_FAST
        per_client = self._per_client.get(channel)
        if per_client is not None and client and not await per_client.allow(client):
            return TOO_FAST
        return None

    async def notice_allowed(self, conversation_key: str) -> bool:
        return await self._notices.allow(conversation_key)

    async def aclose(self) -> None:
        for limiter in (self._per_conversation, self._notices, *self._per_client.values()):
            await limiter.aclose()
