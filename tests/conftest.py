"""Test-wide setup: the repo root importable, and nothing reaching a model or dataset hub."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tests build their own tiny models and data; any hub access is a bug and must fail fast.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import secrets  # noqa: E402

import pytest  # noqa: E402

# Every process a test starts inherits this marker, so one that outlives the suite is found even
# after its parent died and it was re-parented away from this process.
SESSION_MARK = "REWARDSTACK_TEST_SESSION"
os.environ[SESSION_MARK] = secrets.token_hex(8)
# Helpers multiprocessing starts for this process itself (math_equiv's in-process pools); they end
# with the interpreter, after this check.
_INTERPRETER_HELPERS = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")


def _marked_processes() -> list:
    import psutil

    mark, me, found = os.environ[SESSION_MARK], os.getpid(), []
    for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(SESSION_MARK) != mark:
                continue
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["ppid"] == me and any(h in cmdline for h in _INTERPRETER_HELPERS):
            continue
        found.append(proc)
    return found


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_suite():
    """Fails the session when a process some test started is still running after every test ended."""
    import psutil

    yield
    # Generous: a service stopped by its parent's death still drains for a few seconds.
    _gone, alive = psutil.wait_procs(_marked_processes(), timeout=30)
    if alive:
        names = []
        for proc in alive:
            try:
                names.append(f"{proc.pid}: {' '.join(proc.cmdline())[:160]}")
                proc.kill()
            except psutil.Error:
                continue
        if names:
            pytest.fail("processes started by the tests outlived them (killed now):\n  " + "\n  ".join(names))
