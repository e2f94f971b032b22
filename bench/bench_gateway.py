"""The gateway's coalescing: 1,024 single-sample OpenRLHF requests vs one batch vs no coalescing.

    python bench/bench_gateway.py [--n 1024] [--rounds 3] [--coalesce-ms 5]

regex_format and vqa_accuracy run as uvicorn processes (max_batch and max_queue raised to n, so
that no path is slowed by 413 splits or 503 back-off), and the gateway as a third process over
them. Three ways to score the same n samples with both rewards:

  gateway   n concurrent POST /openrlhf/get_reward, one sample each (what OpenRLHF >= 0.10 sends)
  batch     one n-item /v1/score call to each service, both at once (what rewardstack's trainer sends)
  direct    n concurrent single-item /v1/score calls to each service, no coalescing

The issue's goals: gateway wall time <= 2x batch, and >= 10x faster than direct.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proto.client import RewardClient
from tests.helpers import service_process
from tests.services.gateway import payloads as p

CLIENT_CONNECTIONS = 64  # as many as RewardClient opens per service on the direct path
ANSWER_PARAMS = {"mode": "exact", "answer_tag": "answer"}


def samples(n: int) -> list[tuple[str, str]]:
    """(response, label) pairs, distinct texts so nothing can cache its way to a number."""
    return [(f"<think>count {i}</think><answer>{i % 7}</answer>", str(i % 5)) for i in range(n)]


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(latencies, n=100)
    return qs[49] * 1000, qs[98] * 1000


async def via_gateway(url: str, n: int) -> tuple[float, list[float]]:
    bodies = [p.openrlhf_single(response=r, label=label) for r, label in samples(n)]
    limits = httpx.Limits(max_connections=CLIENT_CONNECTIONS, max_keepalive_connections=CLIENT_CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        await client.post("/openrlhf/get_reward", json=bodies[0])  # connection and warm-up off the clock

        async def one(body) -> float:
            t0 = time.perf_counter()
            resp = await client.post("/openrlhf/get_reward", json=body)
            resp.raise_for_status()
            return time.perf_counter() - t0

        started = time.perf_counter()
        latencies = await asyncio.gather(*(one(b) for b in bodies))
        return time.perf_counter() - started, list(latencies)


def _items(n: int) -> list[dict]:
    return [{"completion": r, "reference": label} for r, label in samples(n)]


async def batched(fmt: str, ans: str, n: int) -> tuple[float, list[float]]:
    items = _items(n)
    async with RewardClient(fmt) as f, RewardClient(ans) as a:
        await asyncio.gather(f.score(items[:1]), a.score(items[:1], params=ANSWER_PARAMS))
        started = time.perf_counter()
        await asyncio.gather(f.score(items), a.score(items, params=ANSWER_PARAMS))
        wall = time.perf_counter() - started
    return wall, [wall] * n  # every sample waits for the whole batch


async def direct(fmt: str, ans: str, n: int) -> tuple[float, list[float]]:
    items = _items(n)
    async with RewardClient(fmt) as f, RewardClient(ans) as a:
        await asyncio.gather(f.score(items[:1]), a.score(items[:1], params=ANSWER_PARAMS))

        async def one(item) -> float:
            t0 = time.perf_counter()
            await asyncio.gather(f.score([item]), a.score([item], params=ANSWER_PARAMS))
            return time.perf_counter() - t0

        started = time.perf_counter()
        latencies = await asyncio.gather(*(one(it) for it in items))
        return time.perf_counter() - started, list(latencies)


def _batch_sizes(metrics: str) -> dict[str, tuple[float, float]]:
    """{service: (batched calls, items)} from the gateway's rewardstack_gateway_batch_items."""
    out: dict[str, list[float]] = {}
    for line in metrics.splitlines():
        for i, suffix in enumerate(("_count{", "_sum{")):
            if line.startswith("rewardstack_gateway_batch_items" + suffix):
                service = line.split('service="')[1].split('"')[0]
                out.setdefault(service, [0.0, 0.0])[i] = float(line.rsplit(" ", 1)[1])
    return {k: (v[0], v[1]) for k, v in out.items()}


@contextlib.contextmanager
def stack(n: int, coalesce_ms: float):
    limits = {"MAX_BATCH": str(n), "MAX_QUEUE": str(4 * n), "LOG_LEVEL": "WARNING"}
    env = {f"{prefix}_{k}": v for prefix in ("REGEX_FORMAT", "VQA_ACCURACY") for k, v in limits.items()}
    with service_process("services.regex_format.main:app", env) as (fmt, _), \
            service_process("services.vqa_accuracy.main:app", env) as (ans, _), \
            tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "rewards.yaml"
        cfg.write_text(yaml.safe_dump({
            "rewards": [{"name": "format", "url": fmt, "weight": 0.5, "params": {"mode": "think_answer"}},
                        {"name": "answer", "url": ans, "params": ANSWER_PARAMS}],
            "coalesce_ms": coalesce_ms, "max_batch": n,
        }))
        gw_env = {"GATEWAY_CONFIG": str(cfg), "GATEWAY_LOG_LEVEL": "WARNING", "GATEWAY_MAX_QUEUE": str(4 * n)}
        with service_process("services.gateway.main:app", gw_env) as (gw, _):
            yield gw, fmt, ans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--coalesce-ms", type=float, default=5.0)
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, list[float]]]] = {"gateway": [], "batch": [], "direct": []}
    with stack(args.n, args.coalesce_ms) as (gw, fmt, ans):
        for _ in range(args.rounds):
            runs["gateway"].append(asyncio.run(via_gateway(gw, args.n)))
            runs["batch"].append(asyncio.run(batched(fmt, ans, args.n)))
            runs["direct"].append(asyncio.run(direct(fmt, ans, args.n)))
        coalesced = _batch_sizes(httpx.get(gw + "/metrics").text)
    walls = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    print(f"{args.n} samples x 2 rewards, median of {args.rounds} rounds, coalesce window {args.coalesce_ms} ms")
    print(f"{'path':<8} {'wall s':>8} {'samples/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for name, rounds in runs.items():
        p50, p99 = _percentiles([x for _, lat in rounds for x in lat])
        print(f"{name:<8} {walls[name]:>8.3f} {args.n / walls[name]:>10.0f} {p50:>8.1f} {p99:>8.1f}")
    for service, (calls, items) in coalesced.items():
        print(f"gateway -> {service}: {calls:.0f} batched calls for {items:.0f} items "
              f"(mean {items / calls:.1f} per call, warm-up included)")
    print(f"gateway / batch wall  = {walls['gateway'] / walls['batch']:.2f}  (goal <= 2)")
    print(f"direct / gateway wall = {walls['direct'] / walls['gateway']:.1f}  (goal >= 10)")


if __name__ == "__main__":
    main()
