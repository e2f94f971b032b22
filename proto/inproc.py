"""Endpoint: one URL's httpx client, over a socket, or for inproc://<service> through the service's
ASGI app served in this process, with no socket.

proto/ must not depend on services/, so the app is imported by its dotted path at run time.
The app's lifespan runs once per process however many clients share it, so weights load once.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import weakref

import httpx

_NAME = re.compile(r"^inproc://([a-z_][a-z0-9_]*)/?$")
_STARTED: dict[str, list] = {}  # service -> [app, lifespan context, users]
# One lock per event loop: an asyncio.Lock binds to the first loop that waits on it, and a process
# may run several loops over its life (a benchmark running two trainers, say).
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _LOCKS.get(loop)
    if lock is None:
        lock = _LOCKS[loop] = asyncio.Lock()
    return lock


class InprocApp:
    def __init__(self, url: str):
        match = _NAME.match(url)
        if not match:
            raise ValueError(
                f"bad in-process URL {url!r}: expected inproc://<service>, e.g. inproc://regex_format"
            )
        self.service = match.group(1)
        module_path = f"services.{self.service}.main"
        try:
            self.app = importlib.import_module(module_path).app
        except ModuleNotFoundError as exc:
            raise ValueError(
                f"{url}: cannot import {module_path} ({exc}); is the service installed "
                "(pip install 'rewardstack[services]')?"
            ) from exc
        self.transport = httpx.ASGITransport(app=self.app)
        self._entered = False

    async def start(self) -> None:
        async with _lock():
            entry = _STARTED.get(self.service)
            if entry is None:
                ctx = self.app.router.lifespan_context(self.app)
                await ctx.__aenter__()
                entry = _STARTED[self.service] = [self.app, ctx, 0]
            entry[2] += 1
            self._entered = True

    async def stop(self) -> None:
        if not self._entered:
            return
        self._entered = False
        async with _lock():
            entry = _STARTED[self.service]
            entry[2] -= 1
            if entry[2] == 0:
                del _STARTED[self.service]
                await entry[1].__aexit__(None, None, None)


class Endpoint:
    """One URL of a service, as RewardClient talks to it."""

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
