"""Admission control: body and JSON-size limits before parsing, and a bounded concurrency + queue gate."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from proto.models import ErrorType
from services.common.errors import ServiceError, send_error
from services.common.settings import ServiceSettings


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


_CHUNK = 256 * 1024


def count_json_values(raw: bytes) -> int:
    """About how many values a JSON text holds: its `{`, `[` and `,` outside strings.

    An upper bound on the Python objects parsing it would build, found at C speed without building
    any: a million tiny items cost one pass over the bytes instead of a million pydantic models.
    Once escape pairs are removed every quote left delimits a string, so splitting on quotes
    alternates outside/inside; working in chunks keeps the pieces' memory small.
    """
    cleaned = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    total, inside = 0, False
    for start in range(0, len(cleaned), _CHUNK):
        parts = cleaned[start : start + _CHUNK].split(b'"')
        outside = b"".join(parts[1::2] if inside else parts[0::2])
        total += outside.count(b",") + outside.count(b"{") + outside.count(b"[")
        inside ^= (len(parts) - 1) % 2 == 1
    return total


def check_json_size(raw: bytes, settings: ServiceSettings) -> None:
    """413 before parsing when the body holds far more values than `max_batch` items could need."""
    max_batch = settings.max_batch
    max_values = max_batch * settings.max_json_values_per_item + 256  # + the request's own keys
    values = count_json_values(raw)
    if values > max_values:
        raise ServiceError(
            ErrorType.too_large,
            f"request body holds about {values} JSON values, over this service's limit of {max_values} "
            f"(max_batch {max_batch} items, each with a bounded number of fields); split the request "
            "(RewardClient does this by itself)",
        )


class Gate:
    """At most `concurrency` requests scoring and `queue` waiting; the next one is told to come back.

    `close()` (at the end of a drain) answers every request still waiting with a 503 + Retry-After,
    so a long queue cannot hold a shutdown past the orchestrator's grace period.
    """

    def __init__(self, concurrency: int, queue: int, retry_after_s: int):
        self._sem = asyncio.Semaphore(concurrency)
        self.capacity = concurrency + queue
        self.retry_after_s = retry_after_s
        self.admitted = 0  # scoring + waiting
        self.active = 0
        self._closed = False
        self._waiters: set[asyncio.Future] = set()

    @property
    def waiting(self) -> int:
        return self.admitted - self.active

    def close(self) -> None:
        self._closed = True
        for waiter in list(self._waiters):
            waiter.cancel()

    def _refuse(self, message: str) -> ServiceError:
        return ServiceError(ErrorType.overloaded, message, retry_after=self.retry_after_s)

    @asynccontextmanager
    async def slot(self):
        if self._closed:
            raise self._refuse("service is shutting down; retry on another replica")
        if self.admitted >= self.capacity:
            raise self._refuse(
                f"service is at capacity ({self.capacity} requests scoring or queued); retry later"
            )
        self.admitted += 1
        try:
            await self._acquire()
            self.active += 1
            try:
                yield
            finally:
                self.active -= 1
                self._sem.release()
        finally:
            self.admitted -= 1

    async def _acquire(self) -> None:
        waiter = asyncio.ensure_future(self._sem.acquire())
        self._waiters.add(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._sem.release()  # acquired just as this request was cancelled: give it back
            task = asyncio.current_task()
            if self._closed and not (task and task.cancelling()):
                raise self._refuse("service shut down before this request's turn; retry on another "
                                   "replica") from None
            raise
        finally:
            self._waiters.discard(waiter)
