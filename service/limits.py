"""Request-body size limit, enforced as the body arrives (ASGI middleware).

A body announced larger than the limit (``Content-Length``) is refused with 413 before any of
it is read. A body without a length (chunked) is counted as its chunks arrive and refused as
soon as the count passes the limit, so the service never buffers or parses more than
``max_bytes`` of one request, whatever the client sends.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when the body passes the limit. A Starlette ``HTTPException``
    so that FastAPI's body parsing passes it on and the app answers it (413)."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        seen = f"is {size} bytes" if size is not None else "passed"
        super().__init__(
            413,
            f"request body {seen}, above the limit of {limit} bytes "
            "(setting max_body_bytes, BANDIT_FUSION_MAX_BODY_BYTES)",
        )


class BodySizeLimit:
    """Refuse HTTP request bodies above ``max_bytes`` with 413 and a JSON ``detail``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _answer(send, BodyTooLarge(self.max_bytes, declared))
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as err:  # read outside FastAPI's body parsing
            if started:
                raise
            await _answer(send, err)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send: Send, err: HTTPException) -> None:
    body = json.dumps({"detail": err.detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": err.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
