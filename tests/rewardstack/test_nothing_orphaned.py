"""Nothing a `rewardstack` command starts outlives it: SIGTERM, or the command killed outright."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from rewardstack.serve.checks import port_problem
from tests.helpers import ROOT, free_port

HANG_GUARD_S = 30  # not a timing claim: how long to wait before calling it a hang (a service drains ~5 s)


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rewardstack", *args], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def _tree(proc: subprocess.Popen) -> list[psutil.Process]:
    """The command and every process under it, taken while it runs (orphans are re-parented later)."""
    root = psutil.Process(proc.pid)
    return [root, *root.children(recursive=True)]


def _assert_all_end(tree: list[psutil.Process], ports: list[int]) -> None:
    _gone, alive = psutil.wait_procs(tree, timeout=HANG_GUARD_S)
    for proc in alive:
        proc.kill()  # do not leave it for the next test; the assertion below says it was there
    assert not alive, f"still running after the command ended: {[p.pid for p in alive]}"
    assert [port_problem("127.0.0.1", port) for port in ports] == [None] * len(ports)


def _wait_live(url: str, proc: subprocess.Popen) -> None:
    # /healthz, not /readyz: the gateway is ready only once its upstream services are.
    deadline = time.monotonic() + HANG_GUARD_S * 4
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered /healthz (exit code {proc.poll()})")


def _stop(proc: subprocess.Popen, how: signal.Signals) -> None:
    proc.send_signal(how)
    proc.wait(timeout=HANG_GUARD_S)
    proc.stdout.close()


def test_sigterm_to_gateway_leaves_nothing_running(tmp_path):
    cfg = tmp_path / "rewards.yaml"
    cfg.write_text("rewards:\n  - {name: format, url: 'http://127.0.0.1:1'}\n")
    port = free_port()
    proc = _start("gateway", "--config", str(cfg), "--port", str(port))
    try:
        _wait_live(f"http://127.0.0.1:{port}", proc)
        tree = _tree(proc)
        _stop(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    _assert_all_end(tree, [port])


def _serve(base: int) -> tuple[subprocess.Popen, list[psutil.Process]]:
    """`serve` with math_equiv, whose worker processes are grandchildren of the command."""
    proc = _start("serve", "regex_format", "math_equiv", "--base-port", str(base))
    lines = [proc.stdout.readline().split() for _ in range(2)]
    assert [line[0] for line in lines] == ["regex_format", "math_equiv"], lines
    for _, url in lines:
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    tree = _tree(proc)
    assert len(tree) > 3, "expected the services and math_equiv's workers under serve"
    return proc, tree


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "parent-killed"])
def test_serve_leaves_nothing_running_when_it_is_stopped_or_killed(how):
    base = free_port()
    while port_problem("127.0.0.1", base + 1):  # math_equiv listens on base + 1
        base = free_port()
    proc, tree = _serve(base)
    try:
        _stop(proc, how)
    finally:
        if proc.poll() is None:
            proc.kill()
    _assert_all_end(tree[1:], [base, base + 1])
