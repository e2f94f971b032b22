"""`rewardstack train`, `eval` and `merge`: thin calls into trainer/ with a recipe and `--set` overrides."""

from __future__ import annotations

import argparse
from pathlib import Path

from rewardstack.args import positive
from rewardstack.console import console
from rewardstack.errors import CliError


def add_parsers(sub) -> None:
    for name, func, helptext in (("train", cmd_train, "GRPO-train a model from a recipe"),
                                 ("eval", cmd_eval, "generate and score with a recipe's services")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("recipe", type=Path, help="recipe YAML (see trainer/recipes/)")
        s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a recipe value, e.g. --set grpo.learning_rate=5e-6")
        s.set_defaults(func=func)
    s.add_argument("--adapter", type=Path, help="LoRA adapter directory to evaluate")
    s.add_argument("--limit", type=positive(int), help="evaluate the first N examples")
    s.add_argument("--out", type=Path, default=Path("outputs/eval"),
                   help="where eval.jsonl, summary.md/json and the histograms go (default %(default)s)")
    s.add_argument("--batch-size", type=positive(int), default=8,
                   help="prompts generated at once (default %(default)s)")
    s.add_argument("--max-new-tokens", type=positive(int),
                   help="default: the recipe's grpo.max_completion_length")
    s.add_argument("--backend", choices=("auto", "vllm", "transformers"), default="auto",
                   help="auto uses vLLM when it is installed and a GPU is present, else transformers "
                        "(default %(default)s)")

    s = sub.add_parser("merge", help="merge a LoRA adapter into its base model")
    s.add_argument("adapter", type=Path,
                   help="the run's adapter/ folder (its resolved_recipe.yaml names the base model)")
    s.add_argument("--out", type=Path, required=True,
                   help="folder for the merged model and its processor; required")
    s.set_defaults(func=cmd_merge)


def cmd_train(args: argparse.Namespace) -> int:
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


def cmd_eval(args: argparse.Namespace) -> int:
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


def cmd_merge(args: argparse.Namespace) -> int:
    from trainer.merge import merge_adapter

    merge_adapter(args.adapter, args.out)
    console.print(f"[green]merged[/] into {args.out}")
    return 0
