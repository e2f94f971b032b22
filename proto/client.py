"""RewardClient: the one async client for the contract, used by the trainer, the CLI and the tests.

It reads a service's max_batch once, splits big batches and sends the chunks concurrently, retries
what is worth retrying (connection failures, 502/503/504) with backoff and jitter, honours
Retry-After, fails over between several URLs, and gives up at an overall deadline (told to the
service: proto.deadline) with an error that names the service, the URL and the last cause.
`inproc://<service>` serves the same app in this process, through the same contract, no socket.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from pydantic import ValidationError

from proto.deadline import deadline_payload
from proto.inproc import InprocApp
from proto.models import ErrorResponse, ImageData, ScoreItem, ScoreRequest, ScoreResponse, ServiceInfo

_JSON = {"content-type": "application/json"}
RETRY_STATUSES = frozenset({502, 503, 504})
# Timeouts are handled on their own, before these: they mean the deadline, not a broken connection.
_CONNECTION_ERRORS = (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


class RewardServiceError(RuntimeError):
    """The service could not give an answer before the deadline (down, overloaded, or failing)."""

    def __init__(self, service: str, url: str, cause: str, *, unreachable: bool = False):
        super().__init__(f"reward service {service!r} at {url} gave no answer: {cause}")
        self.service, self.url, self.cause = service, url, cause
        self.unreachable = unreachable  # refused connections, not slowness: the service is down


class RewardRequestError(RuntimeError):
    """The service refused the request itself (validation, size, auth): retrying cannot help."""

    def __init__(self, service: str, url: str, status: int, error_type: str, message: str):
        super().__init__(
            f"reward service {service!r} at {url} refused the request ({status} {error_type}): {message}"
        )
        self.service, self.url, self.status = service, url, status
        self.error_type, self.message = error_type, message


class _Endpoint:
    def __init__(self, url: str, token: str | None, connect_timeout: float):
        self.url = url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.inproc = InprocApp(url) if url.startswith("inproc://") else None
        headers = {"authorization": f"Bearer {token}"} if token else {}
        transport = self.inproc.transport if self.inproc else None
        base = "http://inproc" if self.inproc else self.url
        self.http = httpx.AsyncClient(
            base_url=base, headers=headers, transport=transport,
            timeout=httpx.Timeout(None, connect=connect_timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )

    async def start(self) -> None:
        if self.inproc:
            await self.inproc.start()

    async def close(self) -> None:
        await self.http.aclose()
        if self.inproc:
            await self.inproc.stop()


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
        self._endpoints = [_Endpoint(u, token, connect_timeout_s) for u in url_list]
        self.deadline_s = deadline_s
        self._backoff_s, self._backoff_max_s = backoff_s, backoff_max_s
        self._retry_after_cap_s = retry_after_cap_s
        self._unreachable_s = unreachable_s
        self.down = False  # the last call found every URL refusing connections
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
        """The service's /v1/info, fetched once and kept."""
        if self._info is None:
            await self._start()
            resp = await self._request("GET", "/v1/info", None, time.monotonic() + self.deadline_s)
            self._info = ServiceInfo.model_validate_json(resp.content)
            self.name = self._info.name
        return self._info

    async def score(
        self,
        items: Sequence[ScoreItem | Mapping[str, Any]],
        images: Mapping[str, ImageData] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> ScoreResponse:
        """Score `items`; rewards come back in the order given, whatever the chunking."""
        started = time.monotonic()
        deadline = started + self.deadline_s
        if self.down:
            await self._check_back_up()
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
        refused_since: float | None = None  # start of an unbroken run of refused connections
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
                    refused_since = refused_since or time.monotonic()
                    if self._down_for(refused_since):
                        self.down = True
                        raise RewardServiceError(
                            self.name, url, f"unreachable for {self._unreachable_s:g}s ({cause})",
                            unreachable=True,
                        ) from None
                    attempt += 1
                    await self._pause(attempt, None, deadline)
                    continue
            else:
                if resp.status_code == 200:
                    return resp
                if resp.status_code not in RETRY_STATUSES:
                    raise self._refused(url, resp)
                cause = f"HTTP {resp.status_code}: {_error_message(resp)}"
                delay = _retry_after(resp, self._retry_after_cap_s)
            refused_since = None
            attempt += 1
            await self._pause(attempt, delay, deadline)
        raise RewardServiceError(self.name, url, cause)

    async def ready(self, timeout_s: float = 2.0) -> str | None:
        """None when some URL's /readyz says ready; otherwise why not (its message, or the failure)."""
        await self._start()
        reason = "no URL"
        for ep in self._endpoints:
            try:
                resp = await ep.http.get("/readyz", timeout=timeout_s)
            except httpx.HTTPError as exc:
                reason = f"{ep.url}: {type(exc).__name__}"
                continue
            if resp.status_code == 200:
                return None
            reason = f"{ep.url}: HTTP {resp.status_code} {_error_message(resp)}"
        return reason

    async def _check_back_up(self) -> None:
        # A service found down costs one quick probe per call until it answers again, not a
        # full unreachable_s wait each time.
        if not await self.reachable():
            raise RewardServiceError(self.name, self._endpoints[0].url,
                                     "still unreachable (its /healthz refuses connections)", unreachable=True)
        self.down = False

    def _down_for(self, since: float) -> bool:
        return self._unreachable_s is not None and time.monotonic() - since >= self._unreachable_s

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

    def _pick(self) -> _Endpoint:
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

    def _refused(self, url: str, resp: httpx.Response) -> RewardRequestError:
        try:
            err = ErrorResponse.model_validate_json(resp.content).error
            return RewardRequestError(self.name, url, resp.status_code, err.type.value, err.message)
        except ValidationError:
            return RewardRequestError(self.name, url, resp.status_code, "unknown", resp.text[:300])


def _error_message(resp: httpx.Response) -> str:
    try:
        return ErrorResponse.model_validate_json(resp.content).error.message
    except ValidationError:
        return resp.text[:200] or resp.reason_phrase


def _retry_after(resp: httpx.Response, cap: float) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return min(float(value), cap) if value is not None else None
    except ValueError:
        return None
