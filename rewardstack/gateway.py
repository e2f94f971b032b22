"""`rewardstack gateway`: check the config, then serve the gateway (uvicorn in a child process)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from rewardstack.errors import CliError


def add_parser(sub) -> None:
    s = sub.add_parser("gateway", help="serve one weighted reward over several services for OpenRLHF, "
                       "slime, verl and /v1/score")
    s.add_argument("--config", type=Path, required=True,
                   help="rewards YAML (see trainer/examples/gateway.yaml)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8099)
    s.set_defaults(func=cmd_gateway)


def cmd_gateway(args: argparse.Namespace) -> int:
    from proto.gateway_config import GatewayConfigError, load_config

    try:
        load_config(args.config)
    except GatewayConfigError as exc:
        raise CliError(str(exc)) from None
    env = {**os.environ, "GATEWAY_CONFIG": str(args.config.resolve())}
    cmd = [sys.executable, "-m", "uvicorn", "services.gateway.main:app", "--host", args.host,
           "--port", str(args.port)]
    return subprocess.call(cmd, env=env)
