"""A dead service costs once: every call that asks it anything honours the client's known-down state.

The first caller to find connections refused pays at most `unreachable_s`; callers waiting at the
same time share that one wait, and later ones fail after one quick probe. Counted, not timed: the
guards below only stop a hang.
"""

from __future__ import annotations

import asyncio

from proto.client import RewardClient, RewardServiceError
from proto.coalesce import Coalescer
from proto.models import ScoreItem
from tests.helpers import free_port

HANG_GUARD_S = 30  # far beyond one unreachable_s; only a stall reaches it


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens here


def counting_probes(client: RewardClient) -> list[int]:
    """Count the client's /healthz probes (its public `reachable`)."""
    count = [0]
    real = client.reachable

    async def reachable(timeout_s: float = 1.0) -> bool:
        count[0] += 1
        return await real(timeout_s)

    client.reachable = reachable  # type: ignore[method-assign]
    return count


def test_sixteen_first_callers_share_one_wait_for_the_batch_size_lookup():
    async def go():
        async with RewardClient(dead_url(), deadline_s=600, unreachable_s=0.3) as client:
            coalescer = Coalescer(client, window_s=0.01)  # max_batch unknown: read from /v1/info
            calls = [coalescer.score([ScoreItem(completion=str(i))]) for i in range(16)]
            return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), HANG_GUARD_S)

    errors = asyncio.run(go())
    assert all(isinstance(e, RewardServiceError) and e.unreachable for e in errors)
    # One wait of unreachable_s for all sixteen: they share its error, none started a wait of its own.
    assert len({id(e) for e in errors}) == 1
    assert "unreachable for 0.3s" in errors[0].cause


def test_the_first_caller_pays_unreachable_s_not_a_backoff_past_it(monkeypatch):
    import proto.client

    monkeypatch.setattr(proto.client.random, "uniform", lambda low, high: high)  # the longest jitter

    async def go():
        # A 60 s backoff: a pause not cut at unreachable_s would outlast the guard by far.
        async with RewardClient(dead_url(), deadline_s=600, unreachable_s=0.3, backoff_s=60,
                                backoff_max_s=60) as client:
            try:
                await asyncio.wait_for(client.score([{"completion": "x"}]), HANG_GUARD_S / 10)
            except RewardServiceError as exc:
                return exc

    error = asyncio.run(go())
    assert error.unreachable and "unreachable for 0.3s" in error.cause


def test_once_down_info_score_and_readiness_each_cost_one_probe():
    async def go():
        async with RewardClient(dead_url(), deadline_s=600, unreachable_s=0.2) as client:
            probes = counting_probes(client)
            try:
                await client.score([{"completion": "x"}])
            except RewardServiceError as first:
                assert "unreachable for 0.2s" in first.cause
            assert client.down and probes[0] == 0
            outcomes = []
            for ask in (client.info, lambda: client.score([{"completion": "x"}])):
                try:
                    await ask()
                except RewardServiceError as exc:
                    outcomes.append(exc.cause)
            outcomes.append(await client.ready())
            return outcomes, probes[0]

    (info, score, ready), probes = asyncio.run(go())
    assert "still unreachable" in info and "still unreachable" in score and "still unreachable" in ready
    assert probes == 3


def test_concurrent_callers_of_a_down_service_share_one_probe():
    async def go():
        async with RewardClient(dead_url(), deadline_s=600, unreachable_s=0.2) as client:
            await asyncio.gather(client.info(), return_exceptions=True)
            probes = counting_probes(client)
            calls = [client.score([{"completion": str(i)}]) for i in range(16)]
            errors = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), HANG_GUARD_S)
            return errors, probes[0]

    errors, probes = asyncio.run(go())
    assert all("still unreachable" in e.cause for e in errors)
    assert probes == 1


def test_readiness_polls_count_towards_unreachable_s_so_the_first_score_does_not_wait():
    async def go():
        async with RewardClient(dead_url(), deadline_s=600, unreachable_s=0.2) as client:
            first = await client.ready()
            assert not client.down and "ConnectError" in first
            await asyncio.sleep(0.25)  # refused at both polls, unreachable_s apart: down
            await client.ready()
            assert client.down
            try:
                await client.score([{"completion": "x"}])
            except RewardServiceError as exc:
                return exc

    error = asyncio.run(go())
    assert error.unreachable and "still unreachable" in error.cause  # a probe, not a wait
