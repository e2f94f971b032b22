"""The `rewardstack` command: serve reward services, score files, train, evaluate, merge, demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path

from rich.console import Console

console = Console(stderr=True)
EXAMPLE_FILE = Path(__file__).resolve().parents[1] / "examples" / "completions.jsonl"


class CliError(Exception):
    """A user-facing failure: printed as one message, exit code 2."""


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise CliError(f"{what} {value!r} must look like NAME=VALUE")
        out[name] = rest
    return out


def cmd_serve(args) -> int:
    from trainer.launch import default_services, launch_services

    names = args.services
    if not names:
        names, skipped = default_services()
        for name, why in skipped.items():
            console.print(f"[yellow]skipping {name}[/]: {why}")
    if not names:
        raise CliError("no service to start; install one, e.g. pip install 'rewardstack[services]'")
    with launch_services(names, host=args.host, base_port=args.base_port, quiet=False) as urls:
        for name, url in urls.items():
            print(f"{name:<14} {url}", flush=True)
        console.print("[green]all ready[/]; Ctrl-C stops them all")
        _wait_for_interrupt()
    return 0


def _wait_for_interrupt() -> None:
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopping services")


def cmd_score(args) -> int:
    from trainer import score_file as sf

    rewards = _pairs(args.reward, "--reward")
    params = {k: _json_param(k, v) for k, v in _pairs(args.params, "--params").items()}
    unknown = set(params) - set(rewards)
    if unknown:
        raise CliError(f"--params for {sorted(unknown)} names no --reward")
    out = args.out or args.input.with_suffix(".scored.jsonl")
    try:
        rows, items, images = sf.read_items(args.input)
    except (sf.InputError, OSError) as exc:
        raise CliError(str(exc)) from None
    tallies = asyncio.run(sf.score_all(rows, items, images, rewards, params, out, args.chunk,
                                       args.token, args.deadline, console))
    if args.show_items:
        scored = [json.loads(line) for line in out.read_text().splitlines()]
        console.print(sf.item_table(scored, args.input, list(rewards)))
    console.print(sf.summary_table(tallies))
    console.print(f"wrote {out}")
    return 0


def _json_param(name: str, text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--params {name}=... is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CliError(f"--params {name}=... must be a JSON object")
    return value


def cmd_example(args) -> int:
    """Start regex_format locally and score the shipped example file over HTTP."""
    from trainer.launch import launch_services

    with launch_services(["regex_format"]) as urls:
        console.print(f"regex_format serving at {urls['regex_format']}")
        ns = argparse.Namespace(
            input=args.input, reward=[f"format={urls['regex_format']}"], params=[], out=args.out,
            chunk=64, token=None, deadline=60.0, show_items=True,
        )
        return cmd_score(ns)


def cmd_demo(args) -> int:
    from trainer.demo import run_demo

    out = run_demo(args.out, **({} if args.steps is None else {"steps": args.steps}))
    from rich.markdown import Markdown

    console.print(Markdown((out / "report.md").read_text()))
    console.print(f"[green]done[/]: report, metrics.jsonl, rewards.png and adapter/ in {out}")
    return 0


def cmd_train(args) -> int:
    from trainer.recipe import load_recipe
    from trainer.train import run_training

    out = run_training(load_recipe(args.recipe, args.set))
    console.print(f"[green]done[/]: outputs in {out}")
    return 0


def cmd_eval(args) -> int:
    from trainer.evaluate import run_eval
    from trainer.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.set)
    out = run_eval(recipe, adapter=args.adapter, limit=args.limit, out_dir=args.out,
                   batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, backend=args.backend)
    summary = out / "summary.md"
    if summary.exists():
        console.print(summary.read_text())
    console.print(f"[green]done[/]: eval.jsonl, summary and histograms in {out}")
    return 0


def cmd_merge(args) -> int:
    from trainer.merge import merge_adapter

    merge_adapter(args.adapter, args.out)
    console.print(f"[green]merged[/] into {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rewardstack",
        description="GRPO for vision-language models with every reward computed by its own HTTP service.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="start reward services locally, one uvicorn process each")
    s.add_argument("services", nargs="*", help="service names (default: every installed one)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--base-port", type=int, default=8100,
                   help="regex_format listens here; math_equiv +1, vqa_accuracy +2, clip_cider +3, "
                        "llm_judge +4")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("score", help="score a JSONL file of completions through reward services")
    s.add_argument("input", type=Path, help="one JSON object per line with ScoreItem fields "
                   "(completion, reference, prompt, choices, meta; `image` as a path relative to the file)")
    s.add_argument("--reward", action="append", required=True, metavar="NAME=URL",
                   help="a service to score with; repeat for several (URL may be inproc://<service>)")
    s.add_argument("--params", action="append", default=[], metavar="NAME=JSON",
                   help="params for the reward NAME, e.g. format='{\"mode\": \"reasoning_solution\"}'")
    s.add_argument("--out", type=Path, help="output JSONL (default: INPUT.scored.jsonl)")
    s.add_argument("--chunk", type=int, default=256, help="items per progress step")
    s.add_argument("--token", help="bearer token, when the services require one")
    s.add_argument("--deadline", type=float, default=300.0,
                   help="seconds a service may take per step, retries included, before the run stops")
    s.add_argument("--show-items", action="store_true", help="print a per-item table")
    s.set_defaults(func=cmd_score)

    s = sub.add_parser("demo", help="the CPU demo: a tiny VLM trained with GRPO against local services")
    s.add_argument("--out", type=Path, default=Path("outputs/demo"))
    s.add_argument("--steps", type=int, help="GRPO steps (default: the demo's, 100)")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("example", help="start regex_format and score the shipped example file")
    s.add_argument("--input", type=Path, default=EXAMPLE_FILE)
    s.add_argument("--out", type=Path, default=Path("outputs/example.scored.jsonl"))
    s.set_defaults(func=cmd_example)

    for name, func, helptext in (("train", cmd_train, "GRPO-train a model from a recipe"),
                                 ("eval", cmd_eval, "generate and score with a recipe's services")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("recipe", type=Path, help="recipe YAML (see trainer/recipes/)")
        s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a recipe value, e.g. --set grpo.learning_rate=5e-6")
        s.set_defaults(func=func)
    s.add_argument("--adapter", type=Path, help="LoRA adapter directory to evaluate")
    s.add_argument("--limit", type=int, help="evaluate the first N examples")
    s.add_argument("--out", type=Path, default=Path("outputs/eval"))
    s.add_argument("--batch-size", type=int, default=8, help="prompts generated at once")
    s.add_argument("--max-new-tokens", type=int, help="default: the recipe's grpo.max_completion_length")
    s.add_argument("--backend", choices=("auto", "vllm", "transformers"), default="auto",
                   help="auto uses vLLM when it is installed and a GPU is present")

    s = sub.add_parser("merge", help="merge a LoRA adapter into its base model")
    s.add_argument("adapter", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.set_defaults(func=cmd_merge)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # Typed errors from the client, recipes and launches carry messages meant for users.
        if type(exc).__module__.split(".")[0] in {"proto", "trainer", "services"}:
            console.print(f"[red]error:[/] {exc}")
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
