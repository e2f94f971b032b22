"""The main job on an embedded default: GRPO on a tiny VLM with rewards over local HTTP, on a CPU.

No GPU, Docker or network: the tiny Qwen2.5-VL is built here (trainer/model/tiny.py, plus the answer
tags as single tokens: rewardstack/demo/model.py), the data is drawn here (synthetic shapes, with a
question that spells out the answer to copy), and the reward services of the `tiny-cpu` recipe
that are installed run as uvicorn processes on free ports of 127.0.0.1. After training, the
base model and the trained adapter answer the same held-out prompts (greedy) and the services
score both. It writes
OUTPUT/metrics.jsonl, OUTPUT/rewards.png, OUTPUT/trainer_log.txt, OUTPUT/adapter/ and
OUTPUT/report.md.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from transformers import TrainerCallback

import trainer
from trainer.recipe import Recipe, RewardEntry, load_recipe

log = logging.getLogger(__name__)

DEMO_RECIPE = Path(trainer.__file__).resolve().parent / "recipes" / "tiny-cpu.yaml"
DEFAULT_STEPS = 100
EVAL_PROMPTS = 16  # held-out rows that base and trained models answer for the report
_INPROC = re.compile(r"^inproc://(?P<service>[a-z_][a-z0-9_]*)/?$")


class DemoError(RuntimeError):
    """The demo cannot run here; the message says what to install."""


class _RunFacts(TrainerCallback):
    """Notes the model's size and the wall time for the report."""

    def __init__(self) -> None:
        self.total = self.trainable = 0
        self.started = self.ended = 0.0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.started = time.monotonic()
        if model is not None:
            self.total = sum(p.numel() for p in model.parameters())
            self.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def on_train_end(self, args, state, control, **kwargs):
        self.ended = time.monotonic()


def demo_services(recipe: Recipe) -> tuple[dict[str, RewardEntry], dict[str, str]]:
    """{service: entry} of the recipe's rewards whose service is installed, and the others' why."""
    from trainer.endpoints import SERVICE_NAMES, installed

    chosen: dict[str, RewardEntry] = {}
    skipped: dict[str, str] = {}
    for entry in recipe.rewards:
        match = _INPROC.match(entry.url or "")
        if match is None or match["service"] not in SERVICE_NAMES:
            raise DemoError(f"demo reward {entry.name!r} must name a local service as inproc://<service>")
        service = match["service"]
        if installed(service):
            chosen[service] = entry
        else:
            skipped[service] = "not installed"
    if not chosen:
        raise DemoError("no reward service is installed: pip install 'rewardstack[services]'")
    return chosen, skipped


def run_demo(output_dir: str | Path = "outputs/demo", steps: int = DEFAULT_STEPS,
             recipe_path: str | Path = DEMO_RECIPE, seed: int | None = None) -> Path:
    """Run the CPU demo end to end; return OUTPUT (report.md, metrics.jsonl, rewards.png, adapter/).

    `seed` replaces the recipe's data.seed and grpo.seed (both 0): which rows are drawn, and the
    sampling and LoRA initialisation of training. The tiny model itself is the same for every seed.
    """
    from rewardstack.demo.model import demo_model_dir
    from rewardstack.demo.report import reward_trends, write_report
    from rewardstack.serve.launch import launch_services
    from trainer.feedback.plots import read_step_timing
    from trainer.train import run_training

    if steps < 1:
        raise DemoError(f"--steps {steps}: the demo needs at least 1 GRPO step "
                        f"(default {DEFAULT_STEPS})")
    out = Path(output_dir)
    # The demo's model is the tiny one plus the tags as single tokens (see rewardstack/demo/model.py);
    # built before the services start, so their clock does not run during the build.
    overrides = [f"grpo.max_steps={steps}", f"output.dir={out}", "resume=false",
                 f"model.id={demo_model_dir()}"]
    if seed is not None:
        overrides += [f"data.seed={seed}", f"grpo.seed={seed}"]
    base = load_recipe(recipe_path, overrides)
    chosen, skipped = demo_services(base)
    for service, why in skipped.items():
        log.warning("demo: %s is %s; its reward is left out", service, why)
    facts = _RunFacts()
    with launch_services(list(chosen), host="127.0.0.1") as urls:
        rewards = [entry.model_copy(update={"url": urls[s]}) for s, entry in chosen.items()]
        recipe = base.model_copy(update={"rewards": rewards})
        log.info("demo: %d GRPO steps with rewards %s", steps, {e.name: e.url for e in rewards})
        run_training(recipe, callbacks=[facts])
        comparison = compare_on_held_out(recipe, out / "adapter")
    write_report(
        out / "report.md",
        trends=reward_trends(out / "metrics.jsonl"),
        services={f"{e.name} ({s}, weight {e.weight:g}, params {e.params})": urls[s]
                  for s, e in chosen.items()},
        skipped=skipped,
        facts={
            "model": f"tiny random-initialised Qwen2.5-VL with the answer tags as single tokens, "
                     f"{facts.total:,} parameters, {facts.trainable:,} trainable (LoRA)",
            "data": f"synthetic copy-the-digit questions (answer 1, 2 or 3, spelt out in the "
                    f"question; the random vision tower cannot see the shapes), "
                    f"{base.data.limit} training rows, "
                    f"{base.grpo['num_generations']} completions per prompt, "
                    f"{EVAL_PROMPTS} held-out rows for the comparison",
            "training": f"{steps} GRPO steps on CPU in {facts.ended - facts.started:.0f} s, "
                        f"seed {base.grpo.get('seed')} (`rewardstack demo --seed N`)",
        },
        comparison=comparison,
        timing=read_step_timing(out / "metrics.jsonl"),
    )
    log.info("demo: report in %s", out / "report.md")
    return out


def held_out_rows(recipe: Recipe, count: int = EVAL_PROMPTS) -> list[dict]:
    """`count` synthetic rows drawn after the training rows: same generator, unseen images."""
    from trainer.data import build_dataset

    train = recipe.data.limit or 0
    dataset, _ = build_dataset(recipe.data.model_copy(update={"limit": train + count, "shuffle": False}))
    return [dataset[i] for i in range(train, dataset.num_rows)]


def compare_on_held_out(recipe: Recipe, adapter: Path):
    """Greedy completions of the base model and of the trained adapter, scored by the services."""
    import asyncio

    from rewardstack.demo.report import EvalComparison, EvalSide
    from trainer.evaluate import load_for_eval, score_all
    from trainer.generation import generate_transformers

    rows = held_out_rows(recipe)
    max_new = int(recipe.grpo.get("max_completion_length", 16))
    sides = []
    for path in (None, adapter):
        model, processor, _, _ = load_for_eval(recipe, path)
        completions = generate_transformers(model, processor, rows, max_new_tokens=max_new,
                                            batch_size=len(rows))
        results = asyncio.run(score_all(recipe, rows, completions))
        sides.append(EvalSide(completions, {r.entry.name: r.rewards for r in results}))
    return EvalComparison([r["question"] for r in rows], [str(r["solution"]) for r in rows], *sides)
