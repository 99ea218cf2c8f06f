"""What every HTTP edge shares: bounded request bodies and the caller's address."""
from __future__ import annotations

from fastapi import Request


async def read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is over `limit` bytes — checked while streaming, so an oversized body
    is never held in memory whole (a lying or missing Content-Length changes nothing)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
