"""Run apps for real-HTTP tests: uvicorn on 127.0.0.1 on a free port, in a thread or a process."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]


def with_client(url: str, use, *, deadline_s: float = 60.0):
    """Open a RewardClient on `url`, await `use(client)` on a fresh event loop, return its result."""
    from proto.client import RewardClient

    async def go():
        async with RewardClient(url, deadline_s=deadline_s) as client:
            return await use(client)

    return asyncio.run(go())


async def hang(cancelled: list) -> None:
    """Wait until cancelled, noting the cancellation in `cancelled` (is a task really stopped?)."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled.append(True)
        raise


def wait_until(condition, what: str, *, timeout_s: float = 60.0, interval_s: float = 0.01) -> None:
    """Poll `condition()` until it is true; fail naming `what` if it is not after `timeout_s`.

    The timeout only guards against a hang: it is many times what the condition ever takes.
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not reached within {timeout_s:g}s"
        time.sleep(interval_s)


async def await_until(condition, what: str, *, timeout_s: float = 60.0, interval_s: float = 0.01) -> None:
    """`wait_until` inside a coroutine: polls without blocking the event loop; `condition` may be async."""
    async def check() -> bool:
        seen = condition()
        return await seen if inspect.isawaitable(seen) else seen

    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not reached within {timeout_s:g}s"
        await asyncio.sleep(interval_s)


def finishes(fn, *, timeout_s: float = 60.0):
    """fn()'s result, from a daemon thread; fails if fn runs past `timeout_s` (a hang, not slowness).

    For linear-time claims: the quadratic or exponential version they rule out would take hours,
    so a guard of many times the expected milliseconds tells them apart on any machine.
    """
    result: dict = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread below
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), f"still running after {timeout_s:g}s"
    if "error" in result:
        raise result["error"]
    return result["value"]


def metric(text: str, sample: str, default: float | None = None) -> float:
    """The value of Prometheus `sample` (`name` or `name{label="v"}`) in /metrics text.

    `default` stands for a labelled sample not yet seen (a counter whose label has no count yet).
    """
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    assert default is not None, f"{sample} not in /metrics"
    return default


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(app, *, timeout_s: float = 60.0) -> Iterator[str]:
    """Serve `app` (lifespan included) in a background thread; yield its base URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server failed to start (see the log above)")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@contextlib.contextmanager
def service_process(app_path: str, env: dict[str, str] | None = None,
                    ready_timeout_s: float = 60.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start `uvicorn <app_path>` as a real process; yield (base URL, process) once /readyz is 200."""
    port = free_port()
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app_path, "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, ready_timeout_s)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode}: {proc.stdout.read()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"service at {url} not ready within {timeout_s}s")


class PeakRss:
    """Samples a process's RSS in a thread (this one by default); `peak` is the highest seen."""

    def __init__(self, proc=None, interval_s: float = 0.005):
        import psutil

        self.proc = proc or psutil.Process()
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
