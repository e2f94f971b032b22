"""`rewardstack serve`: its arguments and help."""

from __future__ import annotations

import argparse
from pathlib import Path

from rewardstack.args import base_port
from rewardstack.console import console


def add_parser(sub) -> None:
    s = sub.add_parser("serve", help="start reward services locally, one uvicorn process each")
    s.add_argument("services", nargs="*", help="service names (default: every one that can start here)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address the services listen on (default %(default)s; 0.0.0.0 for every interface)")
    s.add_argument("--on-crash", choices=("restart", "exit"), default="restart",
                   help="a service that dies: restart it with back-off (default), or stop all and exit 1")
    s.add_argument("--log-dir", type=Path, help="where each service's log goes (default: a temporary folder)")
    s.add_argument("--base-port", type=base_port, default=8100,
                   help="regex_format listens here; math_equiv +1, vqa_accuracy +2, clip_cider +3, "
                        "llm_judge +4 (default %(default)s)")
    s.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from rewardstack.serve.supervisor import serve_command

    return serve_command(args.services, args.host, args.base_port, args.log_dir, args.on_crash, console)
