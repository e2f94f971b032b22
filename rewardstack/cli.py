"""The `rewardstack` command's entry point: every verb's parser in one place, and the one error convention."""

from __future__ import annotations

import argparse
import os
import sys

from rewardstack import example, gateway, train
from rewardstack.console import console
from rewardstack.demo import command as demo
from rewardstack.errors import run_verb
from rewardstack.score import command as score
from rewardstack.serve import command as serve


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rewardstack")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rewardstack",
        description="GRPO for vision-language models with every reward computed by its own HTTP service.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_parser(sub)
    score.add_parser(sub)
    demo.add_parser(sub)
    example.add_parser(sub)
    train.add_parsers(sub)
    gateway.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not console.is_terminal:
        # Off a terminal every redraw of a progress bar is a line: the libraries' bars (loading
        # weights) stay off there, and training prints a plain line every tenth of the run.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return run_verb(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
