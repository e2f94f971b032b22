"""The `rewardstack` command: serve reward services, score files, train, evaluate, merge, demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

console = Console(stderr=True)
# Inside the package, so that `rewardstack example` works from a wheel as from a checkout.
EXAMPLE_FILE = Path(__file__).resolve().parent / "examples" / "completions.jsonl"


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
    from trainer.serve import serve_command

    return serve_command(args.services, args.host, args.base_port, args.log_dir, args.on_crash, console)


def cmd_score(args) -> int:
    from trainer import score_file as sf
    from trainer import score_report as report

    rewards = _pairs(args.reward, "--reward")
    for name, url in rewards.items():
        check_url(url, f"--reward {name}")
    params = {k: _json_param(k, v) for k, v in _pairs(args.params, "--params").items()}
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
    job = sf.Job(rows, items, images, rewards, params, out, chunk=args.chunk, token=args.token,
                 deadline_s=args.deadline, resume=args.resume)
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


def check_url(url: str, what: str) -> None:
    """Refuse a reward URL that cannot work, before anything is sent: bad scheme, unknown service."""
    from trainer.launch import SERVICES
    from trainer.service_checks import url_problem

    why = url_problem(url, SERVICES)
    if why:
        raise CliError(f"{what}: {why}")


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
            chunk=64, token=None, deadline=60.0, show_items=True, resume=False, max_null_fraction=0.0,
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
    from trainer.rewards import RewardAbort
    from trainer.train import run_training

    try:
        out = run_training(load_recipe(args.recipe, args.set))
    except RewardAbort as exc:
        resume = f"resume with: {exc.resume_command(str(args.recipe), args.set)}" if exc.resumable else ""
        raise CliError(f"reward {exc.reward!r} at {exc.url}: {exc.reason}\n{resume}".rstrip()) from None
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


def cmd_gateway(args) -> int:
    """Check the config, then serve the gateway (uvicorn in a child process, as `serve` does)."""
    import os
    import subprocess

    from proto.gateway_config import GatewayConfigError, load_config

    try:
        load_config(args.config)
    except GatewayConfigError as exc:
        raise CliError(str(exc)) from None
    env = {**os.environ, "GATEWAY_CONFIG": str(args.config.resolve())}
    cmd = [sys.executable, "-m", "uvicorn", "services.gateway.main:app", "--host", args.host,
           "--port", str(args.port)]
    return subprocess.call(cmd, env=env)


def _positive(kind):
    """An argparse type: a number above 0, refused in argparse's one-line usage error otherwise."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be above 0")
        return value
    return parse


def _port(text: str) -> int:
    value = _positive(int)(text)
    if value > 65535 - 4:  # the last service listens on base + 4
        raise argparse.ArgumentTypeError(f"{text}: ports end at 65535, and five services need base..base+4")
    return value


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

    s = sub.add_parser("serve", help="start reward services locally, one uvicorn process each")
    s.add_argument("services", nargs="*", help="service names (default: every one that can start here)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--on-crash", choices=("restart", "exit"), default="restart",
                   help="a service that dies: restart it with back-off (default), or stop all and exit 1")
    s.add_argument("--log-dir", type=Path, help="where each service's log goes (default: a temporary folder)")
    s.add_argument("--base-port", type=_port, default=8100,
                   help="regex_format listens here; math_equiv +1, vqa_accuracy +2, clip_cider +3, "
                        "llm_judge +4")
    s.set_defaults(func=cmd_serve)

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
    s.add_argument("--chunk", type=_positive(int), default=256, help="items per progress step")
    s.add_argument("--token", help="bearer token, when the services require one")
    s.add_argument("--deadline", type=_positive(float), default=300.0,
                   help="seconds a service may take per step, retries included, before the run stops")
    s.add_argument("--show-items", action="store_true", help="print a per-item table")
    s.add_argument("--resume", action="store_true",
                   help="continue the partial file (OUT with .partial) a failed or interrupted run left")
    s.add_argument("--max-null-fraction", type=float, default=0.0, metavar="F",
                   help="exit 1 when a service's share of null rewards is above F (default 0)")
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
    s.add_argument("--limit", type=_positive(int), help="evaluate the first N examples")
    s.add_argument("--out", type=Path, default=Path("outputs/eval"))
    s.add_argument("--batch-size", type=_positive(int), default=8, help="prompts generated at once")
    s.add_argument("--max-new-tokens", type=_positive(int),
                   help="default: the recipe's grpo.max_completion_length")
    s.add_argument("--backend", choices=("auto", "vllm", "transformers"), default="auto",
                   help="auto uses vLLM when it is installed and a GPU is present")

    s = sub.add_parser("gateway", help="serve one weighted reward over several services for OpenRLHF, "
                       "slime, verl and /v1/score")
    s.add_argument("--config", type=Path, required=True,
                   help="rewards YAML (see trainer/examples/gateway.yaml)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8099)
    s.set_defaults(func=cmd_gateway)

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
        return user_error(exc)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # Typed errors from the client, recipes and launches carry messages meant for users.
        if type(exc).__module__.split(".")[0] in {"proto", "trainer", "services"}:
            return user_error(exc)
        raise


def user_error(exc: BaseException) -> int:
    """Print a failure meant for the user as is (no markup, no wrapping, no traceback): exit 2."""
    console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
