"""The gateway's coalescing: 1,024 single-sample OpenRLHF requests vs one batch vs no coalescing.

    python bench/bench_gateway.py [--n 1024] [--rounds 3] [--coalesce-ms 5] [--connections 64]

regex_format and vqa_accuracy run as uvicorn processes (max_batch and max_queue raised to n, so
that no path is slowed by 413 splits or 503 back-off), and the gateway as a third process over
them. Three ways to score the same n samples with both rewards:

  gateway   n concurrent POST /openrlhf/get_reward, one sample each (what OpenRLHF >= 0.10 sends)
  batch     one n-item /v1/score call to each service, both at once (what rewardstack's trainer sends)
  direct    n concurrent single-item /v1/score calls to each service, no coalescing

The issue's goals: gateway wall time <= 2x batch, and >= 10x faster than direct. The paths take
turns round by round, every other round in reverse order, and each ratio is the median of the
rounds' own ratios (bench/support/paired.py).

The gateway and direct paths send their requests with bench/support/http_load.py over `--connections`
keep-alive connections per target (httpx's per-request CPU was the bottleneck of the first version
of this bench, on the same cores as the servers). Each row also reports the CPU seconds each
process spent on that path, so a wall time can be read as whose work it is.

Reading it: the gateway path's floor is the gateway's own CPU per HTTP request (parse, route,
respond: one request per sample, one Python process), the same order as a service's CPU per
single-item call. So with services as cheap per call as these two, the gateway cannot beat the
direct path by much, nor come near one batch; the goals hold only where a service's per-call
cost (a model forward, a remote judge) dwarfs a request's CPU in the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support.http_load import encode_post, post_all
from bench.support.paired import abba, pair_rounds
from proto.client import RewardClient
from tests.helpers import service_process
from tests.services.gateway import payloads as p

CLIENT_CONNECTIONS = 64  # per target, as many as RewardClient opens per service
ANSWER_PARAMS = {"mode": "exact", "answer_tag": "answer"}


def samples(n: int) -> list[tuple[str, str]]:
    """(response, label) pairs, distinct texts so nothing can cache its way to a number."""
    return [(f"<think>count {i}</think><answer>{i % 7}</answer>", str(i % 5)) for i in range(n)]


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(latencies, n=100)
    return qs[49] * 1000, qs[98] * 1000


async def via_gateway(url: str, n: int, connections: int) -> tuple[float, list[float]]:
    bodies = [json.dumps(p.openrlhf_single(response=r, label=label)).encode() for r, label in samples(n)]
    requests = [encode_post(url, "/openrlhf/get_reward", b) for b in bodies]
    await post_all(url, requests[:1], 1)  # warm-up off the clock
    return await post_all(url, requests, connections)


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


async def direct(fmt: str, ans: str, n: int, connections: int) -> tuple[float, list[float]]:
    """Each sample as two single-item /v1/score calls, one per service, sent at once."""
    def requests(url: str, params: dict) -> list[bytes]:
        return [encode_post(url, "/v1/score", json.dumps({"items": [it], "params": params}).encode())
                for it in _items(n)]

    fmt_reqs, ans_reqs = requests(fmt, {}), requests(ans, ANSWER_PARAMS)
    await asyncio.gather(post_all(fmt, fmt_reqs[:1], 1), post_all(ans, ans_reqs[:1], 1))
    (wall_f, lat_f), (wall_a, lat_a) = await asyncio.gather(post_all(fmt, fmt_reqs, connections),
                                                            post_all(ans, ans_reqs, connections))
    return max(wall_f, wall_a), [max(a, b) for a, b in zip(lat_f, lat_a, strict=True)]


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
    with service_process("services.regex_format.main:app", env) as (fmt, fmt_proc), \
            service_process("services.vqa_accuracy.main:app", env) as (ans, ans_proc), \
            tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "rewards.yaml"
        cfg.write_text(yaml.safe_dump({
            "rewards": [{"name": "format", "url": fmt, "weight": 0.5, "params": {"mode": "think_answer"}},
                        {"name": "answer", "url": ans, "params": ANSWER_PARAMS}],
            "coalesce_ms": coalesce_ms, "max_batch": n,
        }))
        gw_env = {"GATEWAY_CONFIG": str(cfg), "GATEWAY_LOG_LEVEL": "WARNING", "GATEWAY_MAX_QUEUE": str(4 * n)}
        with service_process("services.gateway.main:app", gw_env) as (gw, gw_proc):
            pids = {"client": os.getpid(), "gateway": gw_proc.pid, "format": fmt_proc.pid,
                    "answer": ans_proc.pid}
            yield (gw, fmt, ans), {k: psutil.Process(pid) for k, pid in pids.items()}


def _cpu(procs: dict[str, psutil.Process]) -> dict[str, float]:
    return {k: sum(p.cpu_times()[:2]) for k, p in procs.items()}


def _run(args, urls, procs) -> tuple[dict, dict, dict]:
    """Each path `rounds` times; (runs, median walls, CPU seconds per process per round)."""
    gw, fmt, ans = urls
    paths = {"gateway": lambda: via_gateway(gw, args.n, args.connections),
             "batch": lambda: batched(fmt, ans, args.n),
             "direct": lambda: direct(fmt, ans, args.n, args.connections)}
    runs: dict[str, list[tuple[float, list[float]]]] = {k: [] for k in paths}
    cpu = {k: dict.fromkeys(procs, 0.0) for k in paths}
    for order in abba(tuple(paths), args.rounds):  # every other round reversed: drift falls on all
        for name in order:
            before = _cpu(procs)
            runs[name].append(asyncio.run(paths[name]()))
            for k, v in _cpu(procs).items():  # warm-up requests included: a few ms at most
                cpu[name][k] += (v - before[k]) / args.rounds
    walls = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    return runs, walls, cpu


def _report(args, runs, walls, cpu, coalesced) -> None:
    print(f"{args.n} samples x 2 rewards, median of {args.rounds} rounds, coalesce window "
          f"{args.coalesce_ms} ms, {args.connections} client connections per target")
    print(f"{'path':<8} {'wall s':>8} {'samples/s':>10} {'p50 ms':>8} {'p99 ms':>8}   CPU s per round: "
          + " ".join(f"{k:>7}" for k in next(iter(cpu.values()))))
    for name, rounds in runs.items():
        p50, p99 = _percentiles([x for _, lat in rounds for x in lat])
        print(f"{name:<8} {walls[name]:>8.3f} {args.n / walls[name]:>10.0f} {p50:>8.1f} {p99:>8.1f}   "
              f"{'':16}" + " ".join(f"{v:>7.3f}" for v in cpu[name].values()))
    for service, (calls, items) in coalesced.items():
        print(f"gateway -> {service}: {calls:.0f} batched calls for {items:.0f} items "
              f"(mean {items / calls:.1f} per call, warm-up included)")
    per_round = [{k: v[r][0] for k, v in runs.items()} for r in range(args.rounds)]
    for (base, other), goal in ((("batch", "gateway"), "goal <= 2"), (("gateway", "direct"), "goal >= 10")):
        pair = pair_rounds((base, other), per_round)
        low, high = pair.ratio_iqr
        print(f"{other} / {base} wall, median of the rounds' own ratios = {pair.ratio:.2f} "
              f"(IQR {low:.2f} .. {high:.2f}, {pair.n} rounds; {goal})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--coalesce-ms", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=CLIENT_CONNECTIONS,
                        help="keep-alive connections per target on the gateway and direct paths")
    args = parser.parse_args()
    with stack(args.n, args.coalesce_ms) as (urls, procs):
        runs, walls, cpu = _run(args, urls, procs)
        coalesced = _batch_sizes(httpx.get(urls[0] + "/metrics").text)
    _report(args, runs, walls, cpu, coalesced)


if __name__ == "__main__":
    main()
