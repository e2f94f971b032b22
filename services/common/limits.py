"""Admission control: body-size limit before parsing, and a bounded concurrency + queue gate."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from proto.models import ErrorType
from services.common.errors import ServiceError, send_error


def _too_large_message(max_bytes: int) -> str:
    return (f"request body is over the service's limit of {max_bytes} bytes; "
            "send fewer items per request or raise <SERVICE>_MAX_BODY_BYTES")


class _BodyTooLarge(ServiceError):
    """Raised from inside `receive`, so a route reading the body answers with the typed 413."""

    def __init__(self, max_bytes: int):
        super().__init__(ErrorType.too_large, _too_large_message(max_bytes))


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes` with a 413 before any of them is parsed.

    A declared Content-Length is checked up front; a chunked body is counted as it streams in
    and cut off as soon as it passes the limit, so a client cannot make the service buffer it.
    """

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send):
        await send_error(send, ErrorType.too_large, _too_large_message(self.max_bytes))


class Gate:
    """At most `concurrency` requests scoring and `queue` waiting; the next one is told to come back."""

    def __init__(self, concurrency: int, queue: int, retry_after_s: int):
        self._sem = asyncio.Semaphore(concurrency)
        self.capacity = concurrency + queue
        self.retry_after_s = retry_after_s
        self.admitted = 0  # scoring + waiting
        self.active = 0

    @property
    def waiting(self) -> int:
        return self.admitted - self.active

    @asynccontextmanager
    async def slot(self):
        if self.admitted >= self.capacity:
            raise ServiceError(
                ErrorType.overloaded,
                f"service is at capacity ({self.capacity} requests scoring or queued); retry later",
                retry_after=self.retry_after_s,
            )
        self.admitted += 1
        try:
            async with self._sem:
                self.active += 1
                try:
                    yield
                finally:
                    self.active -= 1
        finally:
            self.admitted -= 1
