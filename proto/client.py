"""RewardClient: the one async client for the contract, used by the trainer, the CLI and the tests.

It reads a service's max_batch once, splits big batches and sends the chunks concurrently, retries
what is worth retrying (connection failures, 502/503/504) with backoff and jitter, honours
Retry-After, fails over between several URLs, and gives up at an overall deadline (told to the
service: proto.deadline) with an error that names the service, the URL and the last cause. A service
that refuses connections is known down once: every call (score, info, readiness) then fails at once
after one quick probe, shared by concurrent callers. `inproc://<service>` serves the same app in this
process, through the same contract, without a socket.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx

from proto.client_errors import (
    RewardRequestError,
    RewardServiceError,
    error_message,
    refused,
    retry_after,
)
from proto.deadline import deadline_payload
from proto.inproc import Endpoint
from proto.models import ImageData, ScoreItem, ScoreRequest, ScoreResponse, ServiceInfo

__all__ = ["RETRY_STATUSES", "RewardClient", "RewardRequestError", "RewardServiceError"]

_JSON = {"content-type": "application/json"}
RETRY_STATUSES = frozenset({502, 503, 504})
# Timeouts are handled on their own, before these: they mean the deadline, not a broken connection.
_CONNECTION_ERRORS = (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


class RewardClient:
    """Score batches against one reward endpoint (one or several URLs of the same service).

    Args:
        urls: `http(s)://host:port`, a list of them (round-robin with failover), or `inproc://<service>`.
        deadline_s: overall time budget of one `score` call, retries included; sent as deadline_ms.
        token: bearer token, when the service sets `<PREFIX>_AUTH_TOKEN`.
        max_concurrent_chunks: chunks of one call in flight at once.
        backoff_s / backoff_max_s: first retry delay and its cap (full jitter).
        retry_after_cap_s: the longest Retry-After honoured.
        unreachable_s: give up early once every attempt for this long was refused a connection
            (the service is down, not slow); None waits for the whole deadline.
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        deadline_s: float = 60.0,
        token: str | None = None,
        max_concurrent_chunks: int = 8,
        backoff_s: float = 0.1,
        backoff_max_s: float = 5.0,
        retry_after_cap_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        unreachable_s: float | None = None,
    ):
        url_list = [urls] if isinstance(urls, str) else list(urls)
        if not url_list:
            raise ValueError("RewardClient needs at least one URL")
        self._endpoints = [Endpoint(u, token, connect_timeout_s) for u in url_list]
        self.deadline_s = deadline_s
        self._backoff_s, self._backoff_max_s = backoff_s, backoff_max_s
        self._retry_after_cap_s = retry_after_cap_s
        self._unreachable_s = unreachable_s
        self.down = False  # connections have been refused for unreachable_s, with no answer since
        # Start of the unbroken run of refused connections, shared by every call on this client:
        # concurrent callers give up together, and a late one does not start its own wait.
        self._refused_since: float | None = None
        self._flights: dict[str, asyncio.Future] = {}
        self._chunk_sem = asyncio.Semaphore(max_concurrent_chunks)
        self._next = 0
        self._info: ServiceInfo | None = None
        self._started = False
        self.name = url_list[0]

    async def __aenter__(self) -> RewardClient:
        await self._start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            for ep in self._endpoints:
                await ep.start()

    async def aclose(self) -> None:
        for ep in self._endpoints:
            await ep.close()
        self._started = False

    async def info(self) -> ServiceInfo:
        """The service's /v1/info, fetched once (by one request for concurrent callers) and kept."""
        if self._info is None:
            await self._start()
            await self._gate()
            self._info = await self._once("info", self._fetch_info)
            self.name = self._info.name
        return self._info

    async def _fetch_info(self) -> ServiceInfo:
        resp = await self._request("GET", "/v1/info", None, time.monotonic() + self.deadline_s)
        return ServiceInfo.model_validate_json(resp.content)

    async def score(
        self,
        items: Sequence[ScoreItem | Mapping[str, Any]],
        images: Mapping[str, ImageData] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> ScoreResponse:
        """Score `items`; rewards come back in the order given, whatever the chunking."""
        started = time.monotonic()
        deadline = started + self.deadline_s
        await self._gate()
        parsed = [it if isinstance(it, ScoreItem) else ScoreItem.model_validate(it) for it in items]
        info = await self.info()
        size = info.limits.max_batch
        chunks = [parsed[i:i + size] for i in range(0, len(parsed), size)]
        parts = await asyncio.gather(
            *(self._score_chunk(c, images or {}, params or {}, deadline) for c in chunks)
        )
        return ScoreResponse(
            rewards=[r for p in parts for r in p.rewards],
            details=[d for p in parts for d in p.details],
            service=info.name,
            version=info.version,
            elapsed_ms=round((time.monotonic() - started) * 1000, 3),
        )

    async def _score_chunk(self, items, images, params, deadline) -> ScoreResponse:
        used = {it.image_id for it in items if it.image_id is not None}
        request = ScoreRequest(items=items, images={k: v for k, v in images.items() if k in used},
                               params=dict(params))
        payload = deadline_payload(request.model_dump_json(exclude_defaults=True).encode(), self._info)
        async with self._chunk_sem:
            resp = await self._request("POST", "/v1/score", payload, deadline)
        scored = ScoreResponse.model_validate_json(resp.content)
        if len(scored.rewards) != len(items):
            raise RewardServiceError(self.name, str(resp.request.url),
                                     f"{len(scored.rewards)} rewards for {len(items)} items")
        return scored

    async def _request(
        self, method: str, path: str, payload: bytes | Callable[[float], bytes] | None, deadline: float
    ) -> httpx.Response:
        attempt, cause, url = 0, "deadline passed before the first attempt", self._endpoints[0].url
        while (remaining := deadline - time.monotonic()) > 0:
            ep = self._pick()
            url = ep.url
            delay: float | None = None
            try:
                resp = await ep.http.request(
                    method, path, content=payload(remaining) if callable(payload) else payload,
                    headers=_JSON if payload is not None else None,
                    timeout=httpx.Timeout(remaining, connect=min(remaining, ep.connect_timeout)),
                )
            except httpx.TimeoutException as exc:
                earlier = f"; before that {cause}" if attempt else ""
                cause = f"no response within the deadline ({type(exc).__name__}){earlier}"
            except _CONNECTION_ERRORS as exc:
                cause = f"{type(exc).__name__}: {exc}".rstrip(": ")
                if isinstance(exc, httpx.ConnectError):
                    if self._note_refusal():
                        raise RewardServiceError(
                            self.name, url, f"unreachable for {self._unreachable_s:g}s ({cause})",
                            unreachable=True,
                        ) from None
                    attempt += 1
                    # Never sleep past the moment refusals will have lasted unreachable_s: the
                    # attempt then decides, so the first caller pays unreachable_s, not more.
                    await self._pause(attempt, None, min(deadline, self._down_at()))
                    continue
            else:
                self._note_answer()
                if resp.status_code == 200:
                    return resp
                if resp.status_code not in RETRY_STATUSES:
                    raise refused(self.name, url, resp)
                cause = f"HTTP {resp.status_code}: {error_message(resp)}"
                delay = retry_after(resp, self._retry_after_cap_s)
            attempt += 1
            await self._pause(attempt, delay, deadline)
        raise RewardServiceError(self.name, url, cause)

    async def ready(self, timeout_s: float = 2.0) -> str | None:
        """None when some URL's /readyz says ready; otherwise why not (its message, or the failure).

        Refused connections count towards `unreachable_s` as a call's do, so a poller finds a
        dead service down before the first score call has to wait for it.
        """
        await self._start()
        try:
            await self._gate()
        except RewardServiceError as exc:
            return f"{exc.url}: {exc.cause}"
        reason, refused = "no URL", 0
        for ep in self._endpoints:
            try:
                resp = await ep.http.get("/readyz", timeout=timeout_s)
            except httpx.HTTPError as exc:
                reason = f"{ep.url}: {type(exc).__name__}"
                refused += isinstance(exc, httpx.ConnectError)
                continue
            self._note_answer()
            if resp.status_code == 200:
                return None
            reason = f"{ep.url}: HTTP {resp.status_code} {error_message(resp)}"
        if refused == len(self._endpoints):
            self._note_refusal()
        return reason

    async def _gate(self) -> None:
        # A service known down costs each call one quick probe (shared by the calls waiting at
        # the same moment) until it answers again, not a full unreachable_s wait each time.
        if self.down:
            if not await self._once("probe", self.reachable):
                raise RewardServiceError(self.name, self._endpoints[0].url,
                                         "still unreachable (its /healthz refuses connections)",
                                         unreachable=True)
            self._note_answer()

    def _note_refusal(self) -> bool:
        """Note a refused connection; True once refusals have lasted unreachable_s (down)."""
        now = time.monotonic()
        if self._refused_since is None:
            self._refused_since = now
        if self._unreachable_s is not None and now - self._refused_since >= self._unreachable_s:
            self.down = True
        return self.down

    def _down_at(self) -> float:
        if self._unreachable_s is None or self._refused_since is None:
            return float("inf")
        return self._refused_since + self._unreachable_s

    def _note_answer(self) -> None:
        self._refused_since, self.down = None, False

    async def _once(self, key: str, make: Callable[[], Awaitable[Any]]) -> Any:
        """`make()`, run once for all concurrent callers with this key; each gets its result or error."""
        flight = self._flights.get(key)
        if flight is None:
            flight = self._flights[key] = asyncio.ensure_future(make())

            def landed(done: asyncio.Future) -> None:
                if self._flights.get(key) is done:
                    del self._flights[key]

            flight.add_done_callback(landed)
        return await asyncio.shield(flight)

    async def reachable(self, timeout_s: float = 1.0) -> bool:
        """One quick GET /healthz on each URL, no retries: is any replica answering at all?"""
        await self._start()
        for ep in self._endpoints:
            try:
                resp = await ep.http.get("/healthz", timeout=timeout_s)
            except httpx.HTTPError:
                continue
            if resp.status_code < 500:
                return True
        return False

    def _pick(self) -> Endpoint:
        ep = self._endpoints[self._next % len(self._endpoints)]
        self._next += 1
        return ep

    async def _pause(self, attempt: int, retry_after: float | None, deadline: float) -> None:
        # With several URLs a failure moves straight on to the next one; the pause comes once
        # every URL has been tried in this round.
        if retry_after is None and attempt % len(self._endpoints) != 0:
            return
        if retry_after is None:
            rounds = attempt // len(self._endpoints)
            retry_after = random.uniform(0, min(self._backoff_max_s, self._backoff_s * 2 ** (rounds - 1)))
        await asyncio.sleep(max(0.0, min(retry_after, deadline - time.monotonic())))
