"""Start reward services as local uvicorn processes (for `rewardstack serve`, the demo and tests).

Services are started by their ASGI path in a child process, never imported here: the command
reaches services by URL only. No child outlives the command: each is stopped (SIGTERM, then
SIGKILL) when its launcher exits, and on Linux the kernel also sends it SIGTERM when the process
that started it dies without cleaning up (SIGKILL, a crash): PR_SET_PDEATHSIG.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import httpx

from rewardstack.serve.checks import port_problem, why_not
from trainer.endpoints import SERVICE_NAMES, install_hint, installed

__all__ = ["SERVICES", "LaunchError", "available", "default_services", "install_hint", "installed",
           "launch_services", "port_problem", "stop", "stop_all"]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port_offset: int
    env_prefix: str


# Fixed offsets, so a service keeps its port whichever others run.
SERVICES: dict[str, ServiceSpec] = {
    name: ServiceSpec(name, offset, name.upper() + "_") for offset, name in enumerate(SERVICE_NAMES)
}


class LaunchError(RuntimeError):
    pass


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _libc_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Looked up once, here: between fork and exec (where it runs) a child should only call it.
_PRCTL = _libc_prctl()


def _die_with_parent(parent: int) -> None:
    """preexec_fn: this child gets SIGTERM when the process that started it dies, however it dies."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def default_services(env: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The services that can start here, and why each other one cannot (with the fix)."""
    return available(list(SERVICES), env)


def available(names: list[str], env: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """`names` split into those that can start with `env` and {name: why not, and the fix}."""
    env = dict(os.environ) if env is None else {**os.environ, **env}
    chosen, skipped = [], {}
    for name in names:
        why = why_not(name, env)
        if why:
            skipped[name] = why
        else:
            chosen.append(name)
    return chosen, skipped


def port_of(name: str, host: str, base_port: int | None) -> int:
    return base_port + SERVICES[name].port_offset if base_port else free_port(host)


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
        ports = {name: port_of(name, host, base_port) for name in names}
        taken = [why for name in names if (why := port_problem(host, ports[name]))]
        if taken:
            raise LaunchError("; ".join(taken))
        for name in names:
            procs[name] = spawn(name, host, ports[name], env, quiet)
            urls[name] = f"http://{host}:{ports[name]}"
        for name in names:
            wait_ready(name, urls[name], procs[name], ready_timeout_s)
        yield urls
    finally:
        stop_all(procs.values())


def spawn(name: str, host: str, port: int, env: dict[str, str] | None, quiet: bool = True,
          log_path: str | None = None) -> subprocess.Popen:
    """One uvicorn process for `name`; its output goes to a file, so a failure can quote it."""
    cmd = [sys.executable, "-m", "uvicorn", f"services.{name}.main:app", "--host", host,
           "--port", str(port), "--log-level", "warning" if quiet else "info"]
    # A file, not a pipe: a pipe nobody reads fills up and blocks a chatty service.
    # It lives as long as the process, so no context manager.
    log = open(log_path, "a+") if log_path else tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
    # A session of its own keeps the terminal's Ctrl-C for the launcher, which stops its children
    # in order; the parent-death signal covers a launcher that cannot.
    parent = os.getpid()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, preexec_fn=lambda: _die_with_parent(parent))
    proc.log = log  # type: ignore[attr-defined]
    return proc


def log_tail(proc: subprocess.Popen, lines: int = 12) -> str:
    """The last lines the process wrote, indented; says so when it wrote nothing."""
    log = proc.log  # type: ignore[attr-defined]
    log.flush()
    log.seek(0)
    tail = log.read().strip().splitlines()[-lines:]
    return "\n".join(f"  | {line}" for line in tail) if tail else "  (it wrote nothing)"


def wait_ready(name: str, url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LaunchError(f"{name} exited with code {proc.returncode} while starting; its last log "
                              f"lines:\n{log_tail(proc)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise LaunchError(f"{name} at {url} was not ready within {timeout_s:.0f}s; its last log lines:\n"
                      f"{log_tail(proc)}")


def stop(proc: subprocess.Popen) -> None:
    stop_all([proc])


def stop_all(procs: Iterable[subprocess.Popen]) -> None:
    """SIGTERM to every process first, then wait for each: they drain side by side, not in turn."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        proc.log.close()  # type: ignore[attr-defined]
