"""Benchmark: GRPO step time with rewards over HTTP vs the same rewards through `inproc://`.

    .venv/bin/python bench/bench_grpo_http.py [--steps 20] [--rounds 2]

The tiny Qwen2.5-VL (built locally) trains the `tiny-cpu` recipe with the same seed in each mode:
`http` sends every reward to a uvicorn process on 127.0.0.1 (as the demo and production do),
`inproc` serves the same apps inside the trainer through httpx's ASGI transport (no socket).
Rounds alternate the modes (http, inproc, inproc, http, ...) so drift on a shared machine falls
on both. Step time is measured from step begin to step end, by a callback; the first step of
each run (warm-up) is left out. The target is an HTTP/inproc ratio of at most 1.05.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transformers import TrainerCallback  # noqa: E402

from rewardstack.demo.run import DEMO_RECIPE, demo_services  # noqa: E402
from rewardstack.serve.launch import launch_services  # noqa: E402
from trainer.model.tiny import tiny_model_dir  # noqa: E402
from trainer.recipe import load_recipe  # noqa: E402
from trainer.train import run_training  # noqa: E402


class StepTimer(TrainerCallback):
    def __init__(self) -> None:
        self.times: list[float] = []
        self._t0 = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._t0)


def run_once(urls: dict[str, str], steps: int, out: Path) -> tuple[list[float], dict[str, float]]:
    base = load_recipe(DEMO_RECIPE, [f"grpo.max_steps={steps}", f"output.dir={out}",
                                     "grpo.save_strategy=no", "grpo.seed=0"])
    chosen, _ = demo_services(base)
    rewards = [e.model_copy(update={"url": urls[s]}) for s, e in chosen.items()]
    timer = StepTimer()
    run_training(base.model_copy(update={"rewards": rewards}), callbacks=[timer])
    latency = _latencies(out / "metrics.jsonl")
    return timer.times[1:], latency


def _latencies(metrics: Path) -> dict[str, float]:
    import json

    values: dict[str, list[float]] = {}
    for line in metrics.read_text().splitlines():
        for key, value in json.loads(line).items():
            if key.endswith("/latency_ms") and value is not None:
                values.setdefault(key.split("/")[1], []).append(value)
    return {name: statistics.median(v) for name, v in values.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="runs per mode, alternating")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tiny_model_dir()
    chosen, _ = demo_services(load_recipe(DEMO_RECIPE))
    inproc = {s: f"inproc://{s}" for s in chosen}
    times: dict[str, list[float]] = {"http": [], "inproc": []}
    lat: dict[str, list[dict[str, float]]] = {"http": [], "inproc": []}
    with launch_services(list(chosen)) as http, tempfile.TemporaryDirectory() as tmp:
        order = [m for r in range(args.rounds) for m in (("http", "inproc") if r % 2 == 0 else ("inproc", "http"))]
        for i, mode in enumerate(order):
            step_times, latency = run_once(http if mode == "http" else inproc, args.steps, Path(tmp) / str(i))
            times[mode] += step_times
            lat[mode].append(latency)
    _print(times, lat, args, list(chosen))


def _print(times, lat, args, services) -> None:
    med = {m: statistics.median(t) * 1000 for m, t in times.items()}
    mean = {m: statistics.fmean(t) * 1000 for m, t in times.items()}
    print(f"GRPO step time, tiny Qwen2.5-VL, tiny-cpu recipe, {args.steps} steps × {args.rounds} runs "
          f"per mode (first step of each run left out); rewards: {', '.join(services)}")
    print(f"{'mode':<8} {'steps':>6} {'median ms':>10} {'mean ms':>10} {'ratio (median)':>15}")
    for mode in ("inproc", "http"):
        ratio = med[mode] / med["inproc"]
        print(f"{mode:<8} {len(times[mode]):>6} {med[mode]:>10.1f} {mean[mode]:>10.1f} {ratio:>15.3f}")
    print("reward call latency, median ms (all services of a step run concurrently):")
    for name in lat["http"][0]:
        h = statistics.median(d[name] for d in lat["http"])
        p = statistics.median(d[name] for d in lat["inproc"])
        print(f"  {name:<8} http {h:7.1f}   inproc {p:7.1f}")


if __name__ == "__main__":
    main()
