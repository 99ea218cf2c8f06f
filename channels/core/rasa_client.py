"""Talks to the Rasa server over the crossdesk input channel (bot/rasa_ext/channel.py): Rasa's REST
contract, with the shared token that makes Rasa answer only the app."""
from __future__ import annotations

from typing import Any

import httpx

CHANNEL_PATH = "/webhooks/crossdesk/webhook"
TOKEN_HEADER = "X-Crossdesk-Token"


class BotUnavailable(Exception):
    """Rasa did not answer (down, restarting, timed out); the inbound message is already stored."""


class RasaClient:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout, headers={TOKEN_HEADER: token},
                                         limits=httpx.Limits(max_connections=100, max_keepalive_connections=50))

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            resp = await self._client.post(f"{self.base_url}{CHANNEL_PATH}",
                                            json={"sender": sender, "message": text, "metadata": metadata})
            resp.raise_for_status()
            data = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise BotUnavailable(str(exc)) from exc
        return data if isinstance(data, list) else []

    async def ready(self) -> bool:
        try:
            resp = await self._client.get(f"{self.base_url}/", timeout=3)
            return resp.status_code == 200
        except httpx.HTTPError:
            return False

    async def aclose(self) -> None:
        await self._client.aclose()
