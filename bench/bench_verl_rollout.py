"""verl 0.9's reward-loop shape: 256 samples over 8 worker processes, through the gateway vs direct.

    python bench/bench_verl_rollout.py [--samples 256] [--workers 8] [--rounds 3] [--slow-ms 100]
                                       [--spread-ms 0] [--coalesce-ms 5]

verl 0.9 runs `reward.num_workers` (8) RewardLoopWorker processes; each scores one sample per call
(`RewardLoopWorker.compute_score`, awaiting the adapter's `compute_score`), with many samples in
flight at once. Here each worker process is verl's own RewardLoopWorker, built once, scoring its
share of the samples concurrently, each sample starting at a random offset within `--spread-ms` (0:
all at once, as when the trainer hands a whole batch to the workers; more: rollouts finishing one
by one). Three services: regex_format and vqa_accuracy (cheap), and `slow`, regex_format behind a
fixed `--slow-ms` per request held one request at a time (a model on one device: the cost is per
forward pass, not per item).

  gateway  reward_kwargs {gateway: URL}: each process's samples go to one gateway, which coalesces
           the samples of all processes into batched calls to each service
  direct   reward_kwargs {rewards: [...]}: each process calls each service, coalescing only its
           own samples in flight together
  batch    one 256-item /v1/score call per service, all at once (what TRL's helper sends): the
           reference wall time

Paths alternate within each round. Reported per path: requests each service received (median over
rounds), wall time (median), p99 of per-sample latency (start of its call to its answer, all
rounds). Goals (issue 18): through the gateway <= 16 requests per service per 256 samples, and wall
<= 1.5x one 256-item batch.

Last, a dead service: 16 samples at once in one RewardLoopWorker (direct, `answer` pointed at a
port nobody listens on, unreachable_s 5 s), two steps in a row; when each sample got its answer.
The promise: all within unreachable_s + 1 s on the first step, at once on the next.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.app import create_app
from services.regex_format.scorer import RegexFormatScorer
from services.regex_format.settings import RegexFormatSettings

SERVICES = ("format", "answer", "slow")
# One request at a time, and it says so in /v1/info (limits.max_concurrency), as a model service does.
SLOW_ENV = {"REGEX_FORMAT_MAX_CONCURRENCY": "1"}
ANSWER_PARAMS = {"mode": "exact", "answer_tag": "answer"}


class FixedCost:
    """ASGI wrapper: each /v1/score request waits its turn, then `cost_s`, before the real app."""

    def __init__(self, app, cost_s: float):
        self.app, self.cost_s, self._lock = app, cost_s, asyncio.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/v1/score":
            async with self._lock:
                await asyncio.sleep(self.cost_s)
        await self.app(scope, receive, send)


_settings = RegexFormatSettings()
slow_app = FixedCost(create_app(RegexFormatScorer(_settings), _settings),
                     float(os.environ.get("BENCH_SLOW_MS", "100")) / 1000)


def entries(urls: dict[str, str]) -> list[dict]:
    return [{"name": "format", "url": urls["format"], "weight": 0.5, "params": {"mode": "think_answer"}},
            {"name": "answer", "url": urls["answer"], "params": ANSWER_PARAMS},
            {"name": "slow", "url": urls["slow"], "weight": 0.5, "params": {"mode": "think_answer"}}]


def samples(n: int) -> list[dict]:
    return [{"response": f"<think>count {i}</think><answer>{i % 7}</answer>", "ground_truth": str(i % 5)}
            for i in range(n)]


@contextlib.contextmanager
def stack(n: int, slow_ms: float, coalesce_ms: float):
    from tests.helpers import service_process

    limits = {"MAX_BATCH": str(max(n, 512)), "MAX_QUEUE": str(4 * n), "LOG_LEVEL": "WARNING"}
    env = {f"{prefix}_{k}": v for prefix in ("REGEX_FORMAT", "VQA_ACCURACY") for k, v in limits.items()}
    with service_process("services.regex_format.main:app", env) as (fmt, _), \
            service_process("services.vqa_accuracy.main:app", env) as (ans, _), \
            service_process("bench.bench_verl_rollout:slow_app", {**env, **SLOW_ENV, "BENCH_SLOW_MS": str(slow_ms)}) \
            as (slow, _), tempfile.TemporaryDirectory() as tmp:
        urls = {"format": fmt, "answer": ans, "slow": slow}
        cfg = Path(tmp) / "rewards.yaml"
        cfg.write_text(yaml.safe_dump({"rewards": entries(urls), "coalesce_ms": coalesce_ms}))
        gw_env = {"GATEWAY_CONFIG": str(cfg), "GATEWAY_LOG_LEVEL": "WARNING"}
        with service_process("services.gateway.main:app", gw_env) as (gw, _):
            yield gw, urls, Path(tmp)


def worker(conn, gw: str, urls: dict[str, str], tokenizer_dir: str, share: list[dict], seed: int) -> None:
    """One verl reward-loop worker process: build RewardLoopWorkers, then run what the parent says."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    from tests.integrations.verl_support import rollout_batch, verl_config
    from trainer.model.tiny_qwen import build_tokenizer

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    kwargs = {"gateway": {"gateway": gw}, "direct": {"rewards": entries(urls)}}

    async def build():
        return {mode: RewardLoopWorker(verl_config(Path(tokenizer_dir), kw)) for mode, kw in kwargs.items()}

    workers = loop.run_until_complete(build())
    data = rollout_batch(build_tokenizer(), share)
    rng = random.Random(seed)
    for mode in workers:  # connections and coalescers set up off the clock, as after step 1
        loop.run_until_complete(workers[mode].compute_score(data[0:1]))
    conn.send("ready")
    while (command := conn.recv()) is not None:
        mode, start_at, spread_s = command
        conn.send(loop.run_until_complete(_run(workers[mode], data, start_at, spread_s, rng)))


async def _run(reward_loop, data, start_at: float, spread_s: float, rng) -> list[tuple[float, float]]:
    offsets = [rng.uniform(0, spread_s) for _ in range(len(data))]
    await asyncio.sleep(max(0.0, start_at - time.time()))

    async def one(i: int) -> tuple[float, float]:
        await asyncio.sleep(offsets[i])
        begun = time.time()
        await reward_loop.compute_score(data[i:i + 1])
        return begun, time.time()

    return await asyncio.gather(*(one(i) for i in range(len(data))))


def requests_served(urls: dict[str, str]) -> dict[str, float]:
    out = {}
    for name, url in urls.items():
        lines = httpx.get(url + "/metrics", timeout=10).text.splitlines()
        out[name] = sum(float(x.rsplit(" ", 1)[1]) for x in lines if x.startswith("rewardstack_requests_total{"))
    return out


async def one_batch(urls: dict[str, str], items: list[dict]) -> tuple[float, list[float]]:
    from proto.client import RewardClient

    params = {e["name"]: e["params"] for e in entries(urls)}
    async with contextlib.AsyncExitStack() as stack_:
        clients = {n: await stack_.enter_async_context(RewardClient(u, deadline_s=120)) for n, u in urls.items()}
        await asyncio.gather(*(c.info() for c in clients.values()))
        started = time.perf_counter()
        await asyncio.gather(*(c.score(items, params=params[n]) for n, c in clients.items()))
        wall = time.perf_counter() - started
    return wall, [wall] * len(items)


def run(args) -> dict:
    all_samples = samples(args.samples)
    items = [{"completion": s["response"], "reference": s["ground_truth"]} for s in all_samples]
    results = {p: {"walls": [], "latencies": [], "requests": [], "spreads": []}
               for p in ("gateway", "direct", "batch")}
    with stack(args.samples, args.slow_ms, args.coalesce_ms) as (gw, urls, tmp):
        from trainer.model.tiny_qwen import build_tokenizer

        build_tokenizer().save_pretrained(tmp / "tokenizer")
        ctx = mp.get_context("spawn")
        pipes, procs = [], []
        for w in range(args.workers):
            parent, child = ctx.Pipe()
            share = all_samples[w::args.workers]
            procs.append(ctx.Process(target=worker, args=(child, gw, urls, str(tmp / "tokenizer"), share, w)))
            procs[-1].start()
            pipes.append(parent)
        assert all(p.recv() == "ready" for p in pipes)
        for _ in range(args.rounds):
            for path in results:
                before = requests_served(urls)
                if path == "batch":
                    wall, lat = asyncio.run(one_batch(urls, items))
                    spread = 0.0
                else:
                    start_at = time.time() + 0.2
                    for p in pipes:
                        p.send((path, start_at, args.spread_ms / 1000))
                    spans = [span for p in pipes for span in p.recv()]
                    wall = max(end for _, end in spans) - start_at
                    lat = [end - begun for begun, end in spans]
                    spread = max(b for b, _ in spans) - min(b for b, _ in spans)
                after = requests_served(urls)
                results[path]["walls"].append(wall)
                results[path]["latencies"].extend(lat)
                results[path]["requests"].append({n: after[n] - before[n] for n in SERVICES})
                results[path]["spreads"].append(spread)
        for p in pipes:
            p.send(None)
        for proc in procs:
            proc.join(timeout=30)
        results["dead"] = dead_service(urls, tmp / "tokenizer")
    return results


def dead_service(urls: dict[str, str], tokenizer_dir: Path) -> list[list[float]]:
    """Seconds from the start of each of two steps to each of its 16 answers, `answer` dead."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    from tests.helpers import free_port
    from tests.integrations.verl_support import rollout_batch, verl_config
    from trainer.model.tiny_qwen import build_tokenizer

    logging.getLogger("proto.sample_rewards").setLevel(logging.ERROR)  # one warning per sample
    rewards = entries({**urls, "answer": f"http://127.0.0.1:{free_port()}"})
    data = rollout_batch(build_tokenizer(), samples(16))

    async def steps() -> list[list[float]]:
        reward_loop = RewardLoopWorker(verl_config(tokenizer_dir, {"rewards": rewards}))

        async def one(i: int, started: float) -> float:
            await reward_loop.compute_score(data[i:i + 1])
            return time.monotonic() - started

        out = []
        for _ in range(2):
            started = time.monotonic()
            out.append(sorted(await asyncio.gather(*(one(i, started) for i in range(16)))))
        return out

    return asyncio.run(steps())


def report(args, results: dict) -> None:
    print(f"{args.samples} samples over {args.workers} worker processes, spread {args.spread_ms:g} ms, "
          f"slow service {args.slow_ms:g} ms per request, gateway window {args.coalesce_ms:g} ms, "
          f"median of {args.rounds} rounds")
    print(f"{'path':<8} {'wall s':>7} {'p99 ms':>8} {'starts ms':>10}   requests per service: "
          + " ".join(f"{s:>7}" for s in SERVICES))
    paths = {p: r for p, r in results.items() if p != "dead"}
    walls = {p: statistics.median(r["walls"]) for p, r in paths.items()}
    for path, r in paths.items():
        p99 = statistics.quantiles(r["latencies"], n=100)[98] * 1000
        reqs = {s: statistics.median(x[s] for x in r["requests"]) for s in SERVICES}
        starts = statistics.median(r["spreads"]) * 1000
        print(f"{path:<8} {walls[path]:>7.3f} {p99:>8.1f} {starts:>10.1f}   {'':22}"
              + " ".join(f"{reqs[s]:>7.0f}" for s in SERVICES))
    worst = max(statistics.median(x[s] for x in results["gateway"]["requests"]) for s in SERVICES)
    per_256 = worst * 256 / args.samples
    print(f"gateway: at most {per_256:.0f} requests per service per 256 samples (goal <= 16)")
    print(f"gateway / batch wall = {walls['gateway'] / walls['batch']:.2f} (goal <= 1.5); "
          f"direct / batch wall = {walls['direct'] / walls['batch']:.2f}")
    for step, answers in enumerate(results["dead"], 1):
        print(f"dead service, step {step}: 16 answers between {answers[0]:.2f} and {answers[-1]:.2f} s "
              f"(unreachable_s 5; goal: all within 6 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--workers", type=int, default=8, help="reward loop worker processes (verl: 8)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slow-ms", type=float, default=100.0, help="the slow service's cost per request")
    parser.add_argument("--spread-ms", type=float, default=0.0,
                        help="samples start at random offsets within this (0: all at once)")
    parser.add_argument("--coalesce-ms", type=float, default=5.0, help="the gateway's coalesce_ms")
    args = parser.parse_args()
    report(args, run(args))


if __name__ == "__main__":
    main()
