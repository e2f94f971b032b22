"""`rewardstack gateway`: check the config, then serve the gateway (uvicorn in this process)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rewardstack.errors import CliError

DEFAULT_PORT = 8099


def add_parser(sub) -> None:
    s = sub.add_parser("gateway", help="serve one weighted reward over several services for OpenRLHF, "
                       "slime, verl and /v1/score")
    s.add_argument("--config", type=Path, required=True,
                   help="rewards YAML (see trainer/examples/gateway.yaml); required")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port to listen on (default {DEFAULT_PORT})")
    s.set_defaults(func=cmd_gateway)


def cmd_gateway(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; uvicorn runs here, not in a child, so nothing outlives the command."""
    import uvicorn

    from proto.gateway_config import GatewayConfigError, load_config
    from rewardstack.serve.checks import port_problem

    try:
        load_config(args.config)
    except GatewayConfigError as exc:
        raise CliError(str(exc)) from None
    why = port_problem(args.host, args.port, option="--port")
    if why:
        raise CliError(why)
    # The app reads its config from the environment when it is imported (by its path, below).
    os.environ["GATEWAY_CONFIG"] = str(args.config.resolve())
    uvicorn.run("services.gateway.main:app", host=args.host, port=args.port)
    return 0
