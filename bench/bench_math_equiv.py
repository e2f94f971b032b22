"""Benchmark math_equiv: the worker pool vs one in-process loop calling math-verify, same 1,000 pairs.

    .venv/bin/python bench/bench_math_equiv.py [--pairs 1000] [--workers N] [--rounds 1]

The loop is what a notebook does: for each pair, math-verify's parse of gold and answer, then
verify(gold, answer), timeouts off, in this process; it calls the very function a worker runs
(services.math_equiv.worker.equivalence), so both sides do the same math. The pool is the
scorer's `score` on one batch of the same pairs wrapped in <answer> tags, so it also pays for
answer extraction, pickling and pipes. The pairs are distinct (math-verify's small parse caches
never hit) and mix fractions, radicals, polynomials, sets, intervals, separators and degrees,
about half of them equivalent. Both sides must agree on every reward; the run says if not.
Each round draws fresh pairs and runs both paths on them, every other round in reverse order
(loop, pool, then pool, loop), and the speed-up is also given as the median of the rounds' own
ratios, so load that changes between rounds falls on both paths (bench/support/paired.py).
The table also gives the CPU seconds each path burned (the loop's process time; the pool's
workers' from /proc plus the service process's) and the cores it got (CPU s / wall s): on a
shared machine the wall-clock ratio is bounded by the cores the scheduler hands out, and the
CPU columns show what the pool costs per item regardless. The load average is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.support.paired import abba, pair_rounds  # noqa: E402
from proto.models import ScoreItem  # noqa: E402
from services.common.scoring import Batch  # noqa: E402
from services.math_equiv.scorer import MathEquivParams, MathEquivScorer  # noqa: E402
from services.math_equiv.settings import MathEquivSettings, cpu_count  # noqa: E402
from services.math_equiv.worker import equivalence  # noqa: E402


def pair(i: int, rng: random.Random) -> tuple[str, str]:
    """The i-th (gold, answer) pair; `i` enters every pair so that no two are the same."""
    a, b, k = i + 2, rng.randint(2, 97), rng.randint(2, 9)
    right = rng.random() < 0.5
    kind = i % 8
    if kind == 0:
        return f"\\frac{{{a}}}{{{b}}}", f"\\frac{{{a * k}}}{{{b * k + (0 if right else 1)}}}"
    if kind == 1:
        return f"{a}\\sqrt{{{b}}}", f"\\sqrt{{{a * a * b + (0 if right else 1)}}}"
    if kind == 2:
        return f"x^2 + {2 * a}x + {a * a}", f"(x + {a if right else a + 1})^2"
    if kind == 3:
        n = a * 1000 + b
        return str(n), f"{n if right else n + 1:,}"
    if kind == 4:
        return f"\\{{{a}, {b}, {k}\\}}", f"\\{{{k}, {b}, {a if right else a + 1}\\}}"
    if kind == 5:
        return f"[{a}, {a + b})", f"[{a}, {a + b}{')' if right else ']'}"
    if kind == 6:
        return f"{a}", f"{a if right else a + 1}^\\circ"
    return f"\\frac{{{a}}}{{2}} + \\sqrt{{{b}}}", f"{a / 2:g} + \\sqrt{{{b if right else b + 1}}}"


def worker_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of the worker processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def run_loop(pairs) -> tuple[list[float], float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    rewards = [equivalence((gold,), answer)[1] for gold, answer in pairs]
    return rewards, time.perf_counter() - started, time.process_time() - cpu


def run_pool(scorer: MathEquivScorer, pairs) -> tuple[list[float | None], float, float]:
    items = [ScoreItem(completion=f"<answer>{a}</answer>", reference=g) for g, a in pairs]
    batch = Batch(items, {}, MathEquivParams())
    pids = scorer.pool.pids()
    workers_cpu, cpu = worker_cpu_s(pids), time.process_time()
    started = time.perf_counter()
    results = asyncio.run(scorer.score(batch))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu + worker_cpu_s(pids) - workers_cpu
    return [r.reward for r in results], wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=cpu_count())
    parser.add_argument("--rounds", type=int, default=2,
                        help="fresh pairs each round; loop and pool take turns A B B A")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    scorer = MathEquivScorer(MathEquivSettings(workers=args.workers, time_limit_s=30.0))
    scorer.load()
    equivalence(("\\frac{1}{2}",), "0.5")  # the loop's warm-up, as each worker has had
    load_before = os.getloadavg()[0]
    wall = {"loop": 0.0, "pool": 0.0}
    cpu = {"loop": 0.0, "pool": 0.0}
    rounds: list[dict[str, float]] = []
    disagreements = 0
    paths = {"loop": run_loop, "pool": lambda p: run_pool(scorer, p)}
    try:
        for r, order in enumerate(abba(tuple(paths), args.rounds)):
            rng = random.Random(r)
            pairs = [pair(i + r * args.pairs, rng) for i in range(args.pairs)]
            rewards, rounds_wall = {}, {}
            for path in order:
                rewards[path], rounds_wall[path], cpu_s = paths[path](pairs)
                wall[path], cpu[path] = wall[path] + rounds_wall[path], cpu[path] + cpu_s
            rounds.append(rounds_wall)
            disagreements += sum(x != y for x, y in zip(rewards["loop"], rewards["pool"], strict=True))
    finally:
        scorer.close()
    n = args.pairs * args.rounds
    report(n, args.workers, wall, cpu, disagreements, load_before, os.getloadavg()[0])
    speedup = pair_rounds(("pool", "loop"), rounds)  # loop time / pool time, per round
    low, high = speedup.ratio_iqr
    Console(width=120).print(f"pool speed-up over the loop, median of the {speedup.n} rounds' own ratios: "
                             f"{speedup.ratio:.2f}x (IQR {low:.2f} .. {high:.2f})")


def report(n, workers, wall, cpu, disagreements, load_before, load_after) -> None:
    table = Table(title=f"math_equiv: {n} distinct pairs, {cpu_count()} CPUs, {workers} workers")
    for col in ("path", "wall s", "items/s", "vs loop", "CPU s", "CPU ms/item", "cores got"):
        table.add_column(col, justify="right" if col != "path" else "left")
    names = {"loop": "in-process loop (math-verify)", "pool": f"worker pool ({workers})"}
    for key, name in names.items():
        table.add_row(
            name, f"{wall[key]:.2f}", f"{n / wall[key]:.1f}", f"{wall['loop'] / wall[key]:.2f}x",
            f"{cpu[key]:.2f}", f"{1000 * cpu[key] / n:.1f}", f"{cpu[key] / wall[key]:.2f}",
        )
    console = Console(width=120)  # one line per row, also when piped into a log
    console.print(table)
    console.print(f"rewards that differ between the two: {disagreements}")
    console.print(f"1-min load average: {load_before:.2f} before, {load_after:.2f} after")


if __name__ == "__main__":
    main()
