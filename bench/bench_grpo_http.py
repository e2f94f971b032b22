"""Benchmark: GRPO step time with rewards over HTTP vs through `inproc://`, paired inside ONE trainer.

    .venv/bin/python bench/bench_grpo_http.py [--pairs 20] [--warmup 2] [--device cpu|cuda]
        [--model tiny|3b] [--small] [--threads N] [--summary FILE] [--steps-out FILE.jsonl]

One GRPOTrainer trains the `tiny-cpu` recipe's rewards; before each step a callback picks which
transport answers it: `http` sends every reward to a uvicorn process on 127.0.0.1 (as the demo
and production do), `inproc` serves the same apps inside the trainer through httpx's ASGI
transport (no socket). The modes take turns A B B A (A = inproc), after `--warmup` steps that
alternate too and are left out. Each step is split into generation (TRL's `_generate`), the
reward phase (the trainer's `timing/rewards_ms` timer) and everything else; each pair of steps
gives one difference, and the ratio printed is the median of the per-pair ratios
(bench/support/paired.py says why separate runs could not be trusted). The CPU time of the trainer,
the services and their workers per step says whether a transport costs work, whatever share of
a busy machine the bench got. On a shared CPU use `--threads 1`: a two-thread torch step waits
for whichever thread the scheduler left out, and came out 4 to 13x slower (load 5 to 10 on two
cores) and ±40 % noisy per step.

`--model 3b` trains a Qwen2.5-VL at the 3B checkpoint's size instead (36 layers, hidden 2048,
random bf16 weights built here from a config, LoRA r16, 8 completions of 128 tokens); `--small`
shrinks that geometry so the same path can be rehearsed on a CPU. scripts/gpu_bench.sh runs both
on a GPU (`--device cuda`, no vLLM).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402
from transformers.trainer_callback import PrinterCallback  # noqa: E402

from bench.support.paired import pair_rounds, rounds_of, schedule  # noqa: E402
from rewardstack.demo.run import DEMO_RECIPE, demo_services  # noqa: E402
from rewardstack.serve.launch import launch_services  # noqa: E402
from trainer.model.tiny import tiny_model_dir  # noqa: E402
from trainer.recipe import load_recipe  # noqa: E402
from trainer.rewards import RewardGuardCallback, RewardSet  # noqa: E402

MODES = ("inproc", "http")  # A, B: the ratio is http / inproc
PHASES = ("generation", "rewards", "other", "step")
LABELS = {"rewards": "reward phase", "other": "the rest", "step": "step (wall)"}
# Qwen2.5-VL-3B-Instruct's geometry (its config.json); the vocabulary stays the tiny BPE's.
QWEN25_VL_3B = {"text": {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
                         "num_attention_heads": 16, "num_key_value_heads": 2,
                         "max_position_embeddings": 32768,
                         "rope_parameters": {"rope_type": "default", "rope_theta": 1e6,
                                             "mrope_section": [16, 24, 24]}},
                "vision": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                           "out_hidden_size": 2048, "fullatt_block_indexes": [7, 15, 23, 31]},
                "tie_word_embeddings": True}
SMALL_3B = {"text": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 1e6,
                                         "mrope_section": [4, 6, 6]}},
            "vision": {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2,
                       "out_hidden_size": 128, "fullatt_block_indexes": [1]},
            "tie_word_embeddings": True}
BIG_RECIPE = ["model.dtype=bfloat16", "lora.r=16", "lora.alpha=32", "grpo.max_completion_length=128",
              "grpo.per_device_train_batch_size=8", "grpo.num_generations=4", "grpo.learning_rate=1e-5",
              "grpo.generation_kwargs={min_new_tokens: 128}"]


class SwitchedRewards:
    """Two RewardSets behind one list of TRL reward functions; `mode` picks the one that answers."""

    def __init__(self, sets: dict[str, RewardSet]):
        self.sets = sets
        self.mode = next(iter(sets))
        names = [f.__name__ for f in next(iter(sets.values())).functions]
        self.functions = [self._switch(i, name) for i, name in enumerate(names)]

    def _switch(self, index: int, name: str):
        async def reward(*args, **kwargs):
            return await self.sets[self.mode].functions[index](*args, **kwargs)

        reward.__name__ = reward.__qualname__ = name
        return reward

    @property
    def timer(self):
        return self.sets[self.mode].timer

    def callback(self) -> RewardGuardCallback:
        return RewardGuardCallback(self)

    def first_abort(self):
        return next((a for s in self.sets.values() if (a := s.first_abort()) is not None), None)

    def start_on(self, loop) -> None:
        for s in self.sets.values():
            s.start_on(loop)

    def close(self) -> None:
        for s in self.sets.values():
            s.close()


def tree_cpu_s() -> float:
    """CPU seconds used so far by this process and its descendants: the trainer, the HTTP services
    and every math_equiv worker. Unlike wall time, it does not depend on the share of the CPUs a
    busy machine leaves the bench, so it says whether a transport costs work."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:  # exited between the listing and the reading
            continue
        total += times.user + times.system
    return total


class StepPhases(TrainerCallback):
    """Sets each step's mode from the schedule and records [(mode, {phase: ms})] per step."""

    def __init__(self, rewards: SwitchedRewards, order: list[str], sync=None):
        self.rewards, self.order = rewards, order
        self.sync = sync or (lambda: None)  # on a GPU, wait for queued kernels at the boundaries
        self.steps: list[tuple[str, dict[str, float]]] = []
        self.load: list[float] = []
        self.generation_s = self._t0 = self._cpu0 = 0.0

    def attach(self, trainer) -> None:
        """Time TRL's generation entry point (1.16: `_generate`, transformers or vLLM alike)."""
        original = getattr(trainer, "_generate", None)
        if original is None:
            raise RuntimeError(f"{type(trainer).__name__} has no _generate: this bench reads TRL 1.16's "
                               "generation step; update StepPhases.attach for the installed TRL")

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.generation_s += time.perf_counter() - started

        trainer._generate = timed

    def on_step_begin(self, args, state, control, **kwargs):
        self.rewards.mode = self.order[state.global_step]
        self.rewards.timer.last_ms = None
        self.sync()
        self._cpu0 = tree_cpu_s()
        self.generation_s, self._t0 = 0.0, time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.sync()
        step = (time.perf_counter() - self._t0) * 1000
        rewards = self.rewards.timer.last_ms
        if rewards is None:
            raise RuntimeError(f"step {state.global_step} ran no reward phase: generation must happen "
                               "every step (steps_per_generation = gradient_accumulation_steps)")
        gen = self.generation_s * 1000
        self.steps.append((self.rewards.mode, {"generation": gen, "rewards": rewards,
                                               "other": step - gen - rewards, "step": step,
                                               "cpu": (tree_cpu_s() - self._cpu0) * 1000}))
        self.load.append(os.getloadavg()[0])  # how busy the machine was: the summary says


def build_3b(recipe, small: bool, device: str):
    """A Qwen2.5-VL at the 3B checkpoint's geometry, random bf16 weights, built on `device`."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    from trainer.model.loading import load_processor
    from trainer.model.tiny_qwen import build_config

    processor = load_processor(recipe.model)
    config = build_config(processor.tokenizer, **(SMALL_3B if small else QWEN25_VL_3B))
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    for key in ("eos_token_id", "pad_token_id", "bos_token_id"):
        setattr(model.generation_config, key, getattr(config.text_config, key))
    return model


def recipe_for(args, out: Path):
    steps = args.warmup + 2 * args.pairs
    overrides = [f"grpo.max_steps={steps}", f"output.dir={out}", "grpo.save_strategy=no", "grpo.seed=0",
                 "grpo.disable_tqdm=true", f"grpo.use_cpu={str(args.device == 'cpu').lower()}"]
    if args.model == "3b":
        overrides += [*BIG_RECIPE, f"grpo.bf16={str(args.device == 'cuda').lower()}"]
    return load_recipe(DEMO_RECIPE, overrides)


def run_paired(args, recipe, http: dict[str, str]):
    """One trainer, both transports; the per-step phases in the order they ran, and the load."""
    from trainer.train import build_trainer

    chosen, _ = demo_services(recipe)
    urls = {"http": http, "inproc": {s: f"inproc://{s}" for s in chosen}}
    sets = {mode: RewardSet([e.model_copy(update={"url": urls[mode][s]}) for s, e in chosen.items()])
            for mode in MODES}
    rewards = SwitchedRewards(sets)
    sync = torch.cuda.synchronize if args.device == "cuda" else None
    phases = StepPhases(rewards, schedule(MODES, args.pairs, args.warmup), sync)
    model = build_3b(recipe, args.small, args.device) if args.model == "3b" else None
    trainer, _ = build_trainer(recipe, rewards, callbacks=[phases], model=model)
    trainer.remove_callback(PrinterCallback)  # TRL's per-step dict would bury the summary
    phases.attach(trainer)
    try:
        rewards.start_on(getattr(trainer, "async_loop", None))
        trainer.train()
    finally:
        rewards.close()
    return phases.steps, phases.load


def summary(args, recipe, steps, services, load: list[float], wall_s: float) -> list[str]:
    rounds = rounds_of([(mode, phase) for mode, phase in steps], MODES, args.warmup)
    by_phase = {p: pair_rounds(MODES, [{m: r[m][p] for m in MODES} for r in rounds]) for p in PHASES}
    g = recipe.grpo
    model = {"tiny": "tiny Qwen2.5-VL", "3b": "Qwen2.5-VL at 3B size" + (" (--small)" if args.small else "")}
    lines = [f"== GRPO step, {model[args.model]} on {args.device}: {g['per_device_train_batch_size']} "
             f"completions x {g['max_completion_length']} tokens, rewards {', '.join(services)} ==",
             f"{len(rounds)} pairs in one trainer, order A B B A (A = inproc, B = http), {args.warmup} "
             f"warm-up steps left out; {wall_s:.0f} s; 1-min load average over the steps: median "
             f"{statistics.median(load):.1f} (min {min(load):.1f}, max {max(load):.1f}) on "
             f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads",
             f"{'phase':<14} {'inproc ms':>10} {'http ms':>10}   http - inproc, per pair"]
    for p in PHASES:
        pair = by_phase[p]
        lines.append(f"{LABELS.get(p, p):<14} {statistics.median(pair.base):>10.1f} "
                     f"{statistics.median(pair.other):>10.1f}"
                     f"   {pair.describe(digits=2 if p == 'rewards' else 1)}")
    step = by_phase["step"]
    (c1, c3), (q1, q3) = step.ratio_ci(), step.ratio_iqr
    lines.append(f"HTTP / in-process step time, median of the {step.n} pairs' ratios: {step.ratio:.3f} "
                 f"(95 % CI {c1:.3f} .. {c3:.3f}; IQR {q1:.3f} .. {q3:.3f})")
    # CPU time comes in 10 ms clock ticks: a single step's is coarse, the mean over pairs is not.
    cpu = pair_rounds(MODES, [{m: r[m]["cpu"] for m in MODES} for r in rounds])
    mean, se = cpu.diff_mean_se
    lines.append(f"CPU time per step, trainer + services + workers: inproc {statistics.fmean(cpu.base):.1f} ms, "
                 f"http {statistics.fmean(cpu.other):.1f} ms (means); paired difference {mean:+.1f} ± {se:.1f} ms SE")
    lines.append("reward phase share of the step: " + ", ".join(
        f"{m} {100 * statistics.median(r[m]['rewards'] / r[m]['step'] for r in rounds):.2f} %" for m in MODES))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20, help="pairs of steps measured (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="steps left out at the start (default 2)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--model", choices=("tiny", "3b"), default="tiny")
    parser.add_argument("--small", action="store_true", help="--model 3b at toy size, for a CPU rehearsal")
    parser.add_argument("--summary", type=Path, help="also append the summary block to this file")
    parser.add_argument("--steps-out", type=Path, help="write every step's mode and phases here (JSON lines)")
    parser.add_argument("--threads", type=int, help="torch CPU threads of the trainer (default: torch's). "
                        "On a busy shared CPU, 1 keeps a step from waiting on a descheduled sibling thread")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here; use --device cpu")
    tiny_model_dir()  # built before the services start, so their clock does not run during the build
    chosen, _ = demo_services(load_recipe(DEMO_RECIPE))
    started = time.monotonic()
    with launch_services(list(chosen)) as http, tempfile.TemporaryDirectory() as tmp:
        recipe = recipe_for(args, Path(tmp))
        steps, load = run_paired(args, recipe, http)
    lines = summary(args, recipe, steps, list(chosen), load, time.monotonic() - started)
    print("\n".join(lines), flush=True)
    if args.steps_out is not None:
        args.steps_out.write_text("".join(json.dumps({"step": i, "mode": mode, **phase}) + "\n"
                                          for i, (mode, phase) in enumerate(steps)), encoding="utf-8")
    if args.summary is not None:
        with args.summary.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
