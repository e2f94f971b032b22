"""`rewardstack score`: its arguments, their checks before anything is sent, and the exit status."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from rich.markup import escape

from rewardstack.args import json_object, pairs, positive
from rewardstack.console import console
from rewardstack.errors import CliError

# A recipe entry's unreachable_s default (proto.rewards.RewardEntry), not imported: --help stays quick.
UNREACHABLE_S = 5.0


def add_parser(sub) -> None:
    s = sub.add_parser(
        "score", help="score a JSONL file of completions through reward services",
        description="Exit status: 0 every item scored; 1 a service returned errors or too many nulls; "
                    "2 a user mistake or a run that could not finish (partial results are kept).")
    s.add_argument("input", type=Path, help="one JSON object per line with ScoreItem fields "
                   "(completion, reference, prompt, choices, meta; `image` as a path relative to the file)")
    s.add_argument("--reward", action="append", required=True, metavar="NAME=URL",
                   help="a service to score with; repeat for several (URL may be inproc://<service>)")
    s.add_argument("--params", action="append", default=[], metavar="NAME=JSON",
                   help="params for the reward NAME, e.g. format='{\"mode\": \"reasoning_solution\"}'")
    s.add_argument("--out", type=Path, help="output JSONL (default: INPUT.scored.jsonl)")
    s.add_argument("--chunk", type=positive(int), default=256,
                   help="items sent per request and progress step (default %(default)s)")
    s.add_argument("--token", help="bearer token, when the services require one")
    s.add_argument("--deadline", type=positive(float), default=300.0,
                   help="seconds a service may take per step, retries included, before the run stops "
                        "(default %(default)s)")
    s.add_argument("--unreachable-s", type=positive(float), default=UNREACHABLE_S, metavar="S",
                   help="a service that refuses connections this long is down and the run stops then, "
                        "not at --deadline (default %(default)s, as a recipe's unreachable_s)")
    s.add_argument("--show-items", action="store_true", help="print a per-item table")
    s.add_argument("--resume", action="store_true",
                   help="continue the partial file (OUT with .partial) a failed or interrupted run left")
    s.add_argument("--max-null-fraction", type=float, default=0.0, metavar="F",
                   help="exit 1 when a service's share of null rewards is above F (default %(default)s)")
    s.set_defaults(func=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from rewardstack.score import report
    from rewardstack.score import run as sf

    rewards = pairs(args.reward, "--reward")
    for name, url in rewards.items():
        check_url(url, f"--reward {name}")
    params = {k: json_object(k, v) for k, v in pairs(args.params, "--params").items()}
    unknown = set(params) - set(rewards)
    if unknown:
        raise CliError(f"--params for {sorted(unknown)} names no --reward")
    if not 0.0 <= args.max_null_fraction <= 1.0:
        raise CliError("--max-null-fraction must be between 0 and 1")
    out = args.out or args.input.with_suffix(".scored.jsonl")
    try:
        rows, items, images = sf.read_items(args.input)
    except (sf.InputError, OSError) as exc:
        raise CliError(str(exc)) from None
    entries = [reward_entry(name, url, args) for name, url in rewards.items()]
    job = sf.Job(rows, items, images, entries, params, out, chunk=args.chunk, token=args.token,
                 resume=args.resume)
    try:
        tallies = asyncio.run(sf.score_all(job, console))
    except sf.InputError as exc:
        raise CliError(str(exc)) from None
    if args.show_items:
        scored = [json.loads(line) for line in out.read_text().splitlines()]
        console.print(report.item_table(scored, args.input, list(rewards)))
    console.print(report.summary_table(tallies))
    for line in report.null_lines(tallies):
        console.print(line, markup=False)
    console.print(f"wrote {out}")
    problems = report.verdict(tallies, args.max_null_fraction)
    for problem in problems:
        console.print(f"[red]error:[/] {escape(problem)}", soft_wrap=True)
    return 1 if problems else 0


def reward_entry(name: str, url: str, args: argparse.Namespace):
    """`--reward NAME=URL` as a recipe entry, so its client is built as training builds it."""
    from pydantic import ValidationError

    from proto.rewards import RewardEntry

    try:
        return RewardEntry(name=name, url=url, timeout_s=args.deadline, unreachable_s=args.unreachable_s)
    except ValidationError as exc:
        raise CliError(f"--reward {name}={url}: {exc.errors()[0]['msg']}") from None


def check_url(url: str, what: str) -> None:
    """Refuse a reward URL that cannot work, before anything is sent: bad scheme, unknown service."""
    from trainer.endpoints import url_problem

    why = url_problem(url)
    if why:
        raise CliError(f"{what}: {why}")
