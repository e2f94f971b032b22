"""Can a service start here? Checked before a process is spawned: its extra, its key, its weights, its port.

Each check returns None when the service can start, else one line saying why not and the fix, so
that `rewardstack serve` skips it up front instead of learning it from a child that died.
"""

from __future__ import annotations

import errno
import socket
import subprocess
import sys

from trainer.endpoints import install_hint, installed


def why_not(name: str, env: dict[str, str]) -> str | None:
    """Why `name` cannot start with `env` (the child's environment), with the fix; None if it can."""
    if not installed(name):
        return f"not installed: {install_hint(name)}"
    if name == "llm_judge" and not (env.get("LLM_JUDGE_API_KEY") or env.get("OPENROUTER_API_KEY")):
        return "no API key: set OPENROUTER_API_KEY (or LLM_JUDGE_API_KEY)"
    if name == "clip_cider":
        return clip_weights_problem(env)
    return None


def port_problem(host: str, port: int, option: str = "--base-port") -> str | None:
    """Why nothing can listen on host:port (taken, or not ours to take); None when it is free.

    `option` is the command's option that picks the port, named in the fix.
    """
    with socket.socket() as s:
        # As uvicorn binds: a port left in TIME_WAIT is free, one with a listener is not.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"port {port} on {host} is taken (another `rewardstack serve` or `gateway`?); "
                        f"stop it, or pick other ports with {option}")
            return f"cannot listen on {host}:{port} ({exc.strerror}); pick another --host or {option}"
    return None


def clip_weights_problem(env: dict[str, str]) -> str | None:
    """None when clip_cider's CLIP weights are on disk (or need no download); else why and the fix.

    Asked of the service itself, in a child process with the environment it would start with: the
    trainer never imports a service, and only the service knows how it finds its weights.
    """
    try:
        done = subprocess.run([sys.executable, "-m", "services.clip_cider.weights"], env=env,
                              capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        return "the CLIP weights check took over 180 s; run python -m services.clip_cider.weights to see why"
    if done.returncode == 0:
        return None
    lines = (done.stdout.strip() or done.stderr.strip() or f"exit code {done.returncode}").splitlines()
    return lines[-1]
