"""Rasa's input channel for the crossdesk app: Rasa's REST channel, answering only the app.

Every request must carry ``X-Crossdesk-Token: $CROSSDESK_RASA_TOKEN`` (the same secret Rasa's HTTP API takes
as ``--auth-token``); anything else gets 401 before a sender id or a text is even read. So a sender id
("whatsapp:+49…") reaching Rasa is one the app chose — shoppers only ever talk to the app.
The stack lists only this channel (no plain ``rest``), at ``/webhooks/crossdesk/webhook``.
"""
from __future__ import annotations

import hmac
import os
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request

TOKEN_HEADER = "X-Crossdesk-Token"


class CrossdeskInput(RestInput):
    def __init__(self, token: str) -> None:
        self.token = token

    @classmethod
    def name(cls) -> Text:
        return "crossdesk"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        token = (credentials or {}).get("token") or os.environ.get("CROSSDESK_RASA_TOKEN") or ""
        if len(token) < 16:
            raise ValueError("CROSSDESK_RASA_TOKEN must be set (16+ characters) for the crossdesk input channel")
        return cls(token)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        bp = super().blueprint(on_new_message)
        expected = self.token.encode()

        @bp.on_request
        async def require_token(request: Request):
            given = (request.headers.get(TOKEN_HEADER) or "").encode()
            if not hmac.compare_digest(given, expected):
                return response.json({"error": "unauthorized"}, status=401)
            return None

        return bp
