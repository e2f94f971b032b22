"""`rewardstack demo`: its arguments, and the report printed at the end."""

from __future__ import annotations

import argparse
from pathlib import Path

from rewardstack.console import console


def add_parser(sub) -> None:
    s = sub.add_parser("demo", help="the CPU demo: a tiny VLM trained with GRPO against local services")
    s.add_argument("--out", type=Path, default=Path("outputs/demo"))
    s.add_argument("--steps", type=int, help="GRPO steps (default: the demo's, 100)")
    s.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.markdown import Markdown

    from rewardstack.demo.run import run_demo

    out = run_demo(args.out, **({} if args.steps is None else {"steps": args.steps}))
    console.print(Markdown((out / "report.md").read_text()))
    console.print(f"[green]done[/]: report, metrics.jsonl, rewards.png and adapter/ in {out}")
    return 0
