"""`rewardstack example`: start regex_format locally and score the shipped example file over HTTP."""

from __future__ import annotations

import argparse
from pathlib import Path

import trainer
from rewardstack.console import console
from rewardstack.score.command import UNREACHABLE_S, cmd_score

# Inside the trainer package, so that `rewardstack example` works from a wheel as from a checkout.
EXAMPLE_FILE = Path(trainer.__file__).resolve().parent / "examples" / "completions.jsonl"


def add_parser(sub) -> None:
    s = sub.add_parser("example", help="start regex_format and score the shipped example file")
    s.add_argument("--input", type=Path, default=EXAMPLE_FILE,
                   help="the file to score (default: the shipped one, %(default)s)")
    s.add_argument("--out", type=Path, default=Path("outputs/example.scored.jsonl"),
                   help="where the scored lines go (default %(default)s)")
    s.set_defaults(func=cmd_example)


def cmd_example(args: argparse.Namespace) -> int:
    from rewardstack.serve.launch import launch_services

    with launch_services(["regex_format"]) as urls:
        console.print(f"regex_format serving at {urls['regex_format']}")
        ns = argparse.Namespace(
            input=args.input, reward=[f"format={urls['regex_format']}"], params=[], out=args.out,
            chunk=64, token=None, deadline=60.0, unreachable_s=UNREACHABLE_S, show_items=True, resume=False,
            max_null_fraction=0.0,
        )
        return cmd_score(ns)
