"""`rewardstack demo`: its arguments, and the report printed at the end."""

from __future__ import annotations

import argparse
from pathlib import Path

from rewardstack.console import console


def add_parser(sub) -> None:
    s = sub.add_parser("demo", help="the CPU demo: a tiny VLM trained with GRPO against local services")
    s.add_argument("--out", type=Path, default=Path("outputs/demo"),
                   help="where the report, metrics, plot and adapter go (default outputs/demo)")
    s.add_argument("--steps", type=int, help="GRPO steps (default: the demo's, 100)")
    s.add_argument("--seed", type=int, help="seed of the data draws and of training (default: the demo "
                   "recipe's, 0); the README's numbers name the seed they came from")
    s.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.markdown import Markdown

    from rewardstack.demo.run import run_demo

    chosen = {"steps": args.steps, "seed": args.seed}
    out = run_demo(args.out, **{k: v for k, v in chosen.items() if v is not None})
    console.print(Markdown((out / "report.md").read_text()))
    console.print(f"[green]done[/]: report, metrics.jsonl, rewards.png and adapter/ in {out}")
    return 0
