"""`rewardstack serve`: keep local reward services up, say what did not start and why, restart crashes.

Unlike `launch_services` (all or nothing, for the demo and tests), a service that cannot start is
reported with its log tail and the others stay up; a child that dies later is restarted with
exponential back-off, or, with `on_crash="exit"`, everything stops with the reason.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from rewardstack.serve.launch import (
    SERVICES,
    LaunchError,
    available,
    log_tail,
    port_of,
    port_problem,
    spawn,
    stop,
    stop_all,
    wait_ready,
)
from trainer.endpoints import unknown_service


def serve_command(services: list[str], host: str, base_port: int | None, log_dir: Path | None,
                  on_crash: str, console: Console) -> int:
    """`rewardstack serve`: 0 once stopped by Ctrl-C or SIGTERM after every service came up (its
    normal end), 130 when stopped while they were starting, 1 when a crash stops everything
    (--on-crash exit). Every child is stopped in each case."""
    for name in services:
        why = unknown_service(name, SERVICES)
        if why:
            raise LaunchError(why)
    names, skipped = available(services or list(SERVICES))
    for name, why in skipped.items():
        console.print(f"[yellow]skipping {name}[/]: {escape(why)}", soft_wrap=True)
    if not names:
        raise LaunchError("no service can start here; fix one of the reasons above")
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="rewardstack-serve-"))
    sup = Supervisor(names, host, base_port, log_dir, on_crash=on_crash,
                     say=lambda text: console.print(escape(text), soft_wrap=True))
    try:
        urls = sup.start()
        if not urls:
            raise LaunchError(f"no service started; their logs are in {log_dir}")
        # SIGTERM arrives as KeyboardInterrupt too (rewardstack.errors.run_verb): both stop every child.
        try:
            for name, url in urls.items():
                print(f"{name:<14} {url}", flush=True)
            console.print(f"[green]{len(urls)} ready[/] (logs in {log_dir}); Ctrl-C stops them all")
            return _watch(sup, console)
        except KeyboardInterrupt:
            console.print("stopping services")
            return 0
    finally:
        sup.stop_all()


def _watch(sup: Supervisor, console: Console) -> int:
    while True:
        reason = sup.check()
        if reason:
            console.print(f"[red]error:[/] {escape(reason)}; stopping every service", soft_wrap=True)
            return 1
        time.sleep(0.5)


@dataclass
class Child:
    name: str
    url: str
    port: int
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0  # monotonic time the next restart may happen
    gave_up: bool = False
    started_at: float = 0.0


class Supervisor:
    """Start `names`, keep the healthy ones, watch them; every message goes through `say`."""

    def __init__(self, names: list[str], host: str, base_port: int | None, log_dir: Path, *,
                 say: Callable[[str], None], on_crash: str = "restart", max_restarts: int = 5,
                 backoff_s: float = 1.0, backoff_max_s: float = 60.0, ready_timeout_s: float = 180.0,
                 healthy_after_s: float = 300.0):
        self.host, self.log_dir, self.say = host, log_dir, say
        self.on_crash, self.max_restarts = on_crash, max_restarts
        self.backoff_s, self.backoff_max_s, self.ready_timeout_s = backoff_s, backoff_max_s, ready_timeout_s
        self.healthy_after_s = healthy_after_s
        self.children: dict[str, Child] = {}
        for name in names:
            port = port_of(name, host, base_port)
            self.children[name] = Child(name, f"http://{host}:{port}", port)

    def start(self) -> dict[str, str]:
        """Start every service whose port is free; {name: url} of those that became ready."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for child in list(self.children.values()):
            why = port_problem(self.host, child.port)
            if why:
                self.say(f"skipping {child.name}: {why}")
                del self.children[child.name]
                continue
            child.proc = spawn(child.name, self.host, child.port, None, quiet=False,
                               log_path=str(self.log_dir / f"{child.name}.log"))
            child.started_at = time.monotonic()
        for child in list(self.children.values()):
            try:
                wait_ready(child.name, child.url, child.proc, self.ready_timeout_s)
            except LaunchError as exc:
                self.say(f"not serving {child.name}: {exc}")
                stop(child.proc)
                del self.children[child.name]
        return {c.name: c.url for c in self.children.values()}

    def check(self) -> str | None:
        """Notice crashed children and act on them; a reason to stop everything, or None."""
        now = time.monotonic()
        for child in self.children.values():
            if child.gave_up:
                continue
            if child.proc is not None and child.proc.poll() is not None:
                code = child.proc.returncode
                tail = log_tail(child.proc)
                child.proc = None
                if self.on_crash == "exit":
                    return f"{child.name} exited with code {code}; its last log lines:\n{tail}"
                self._schedule_restart(child, code, tail, now)
            elif child.proc is None and now >= child.next_start:
                self._restart(child)
        if self.children and all(c.gave_up for c in self.children.values()):
            return "every service has stopped for good; see the messages above"
        return None

    def _schedule_restart(self, child: Child, code: int, tail: str, now: float) -> None:
        if now - child.started_at > self.healthy_after_s:
            child.restarts = 0  # it ran well for a while: this crash starts a new count
        if child.restarts >= self.max_restarts:
            child.gave_up = True
            self.say(f"{child.name} exited with code {code} after {child.restarts} restarts; giving up on it "
                     f"(log: {self.log_dir / (child.name + '.log')}):\n{tail}")
            return
        delay = min(self.backoff_s * 2 ** child.restarts, self.backoff_max_s)
        child.next_start = now + delay
        self.say(f"{child.name} exited with code {code}; restarting in {delay:.0f}s:\n{tail}")

    def _restart(self, child: Child) -> None:
        child.restarts += 1
        why = port_problem(self.host, child.port)
        if why:
            child.gave_up = True
            self.say(f"cannot restart {child.name}: {why}")
            return
        child.proc = spawn(child.name, self.host, child.port, None, quiet=False,
                           log_path=str(self.log_dir / f"{child.name}.log"))
        child.started_at = time.monotonic()
        try:
            wait_ready(child.name, child.url, child.proc, self.ready_timeout_s)
        except LaunchError as exc:
            self.say(f"restart {child.restarts} of {child.name} failed: {exc}")
            return  # its exit is noticed by the next check, which schedules the next try
        self.say(f"{child.name} is back at {child.url} (restart {child.restarts})")

    def stop_all(self) -> None:
        stop_all([c.proc for c in self.children.values() if c.proc is not None])
