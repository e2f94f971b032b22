"""Start reward services as local uvicorn processes (for `rewardstack serve`, the demo and tests).

Services are started by their ASGI path in a child process, never imported here: the trainer
reaches services by URL only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port_offset: int  # fixed, so a service keeps its port whichever others run
    needs: str  # a module whose presence means the service's extra is installed
    env_prefix: str


SERVICES: dict[str, ServiceSpec] = {
    s.name: s
    for s in (
        ServiceSpec("regex_format", 0, "re2", "REGEX_FORMAT_"),
        ServiceSpec("math_equiv", 1, "math_verify", "MATH_EQUIV_"),
        ServiceSpec("vqa_accuracy", 2, "rapidfuzz", "VQA_ACCURACY_"),
        ServiceSpec("clip_cider", 3, "open_clip", "CLIP_CIDER_"),
        ServiceSpec("llm_judge", 4, "httpx", "LLM_JUDGE_"),
    )
}


class LaunchError(RuntimeError):
    pass


def installed(name: str) -> bool:
    spec = SERVICES[name]
    return (importlib.util.find_spec(f"services.{name}") is not None
            and importlib.util.find_spec(spec.needs) is not None)


def default_services(env: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The installed services, and why any of them is left out."""
    env = dict(os.environ) if env is None else env
    chosen, skipped = [], {}
    for name in SERVICES:
        if not installed(name):
            skipped[name] = f"not installed (pip install 'rewardstack[{_extra(name)}]')"
        elif name == "llm_judge" and not (env.get("LLM_JUDGE_API_KEY") or env.get("OPENROUTER_API_KEY")):
            skipped[name] = "no API key: set OPENROUTER_API_KEY (or LLM_JUDGE_API_KEY)"
        else:
            chosen.append(name)
    return chosen, skipped


def _extra(name: str) -> str:
    return {"math_equiv": "math", "clip_cider": "clip", "llm_judge": "judge"}.get(name, "services")


def install_hint(name: str) -> str:
    return f"pip install 'rewardstack[{_extra(name)}]'"


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def launch_services(
    names: list[str],
    host: str = "127.0.0.1",
    base_port: int | None = None,
    env: dict[str, str] | None = None,
    ready_timeout_s: float = 180.0,
    quiet: bool = True,
) -> Iterator[dict[str, str]]:
    """Run each named service in its own uvicorn process; yield {name: url} once all are ready.

    With `base_port` a service listens on base_port + its fixed offset (regex_format +0,
    math_equiv +1, vqa_accuracy +2, clip_cider +3, llm_judge +4); without, on a free port.
    Every process is stopped (SIGTERM, then SIGKILL) when the block exits, however it exits.
    """
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise LaunchError(f"unknown service(s) {unknown}; choose from {sorted(SERVICES)}")
    procs: dict[str, subprocess.Popen] = {}
    urls: dict[str, str] = {}
    try:
        for name in names:
            port = base_port + SERVICES[name].port_offset if base_port else free_port(host)
            procs[name] = _spawn(name, host, port, env, quiet)
            urls[name] = f"http://{host}:{port}"
        for name in names:
            _wait_ready(name, urls[name], procs[name], ready_timeout_s)
        yield urls
    finally:
        _stop_all(procs)


def _spawn(name: str, host: str, port: int, env: dict[str, str] | None, quiet: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "uvicorn", f"services.{name}.main:app", "--host", host,
           "--port", str(port), "--log-level", "warning" if quiet else "info"]
    # A file, not a pipe: a pipe nobody reads fills up and blocks a chatty service.
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the process
    # Not quiet: service logs go to our stderr, keeping stdout for what the caller prints.
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=log if quiet else sys.stderr,
                            stderr=log if quiet else None, text=True, start_new_session=True)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def _log_tail(proc: subprocess.Popen, lines: int = 12) -> str:
    log = getattr(proc, "log", None)
    if log is None:
        return "(see the output above)"
    log.seek(0)
    return "\n".join(log.read().strip().splitlines()[-lines:])


def _wait_ready(name: str, url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LaunchError(f"{name} exited with code {proc.returncode} while starting:\n{_log_tail(proc)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise LaunchError(f"{name} at {url} was not ready within {timeout_s:.0f}s")


def _stop_all(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
