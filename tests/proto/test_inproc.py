"""inproc:// clients on successive event loops, as a process running two trainers has."""

import asyncio

from proto.client import RewardClient


def test_clients_on_different_event_loops_share_one_started_app():
    async def open_two_and_score():
        a, b = RewardClient("inproc://regex_format"), RewardClient("inproc://regex_format")
        await asyncio.gather(a._start(), b._start())  # contend for the start lock
        try:
            res = await a.score([{"completion": "<think>x</think><answer>y</answer>"}])
            return res.rewards
        finally:
            await a.aclose()
            await b.aclose()

    assert asyncio.run(open_two_and_score()) == [1.0]
    assert asyncio.run(open_two_and_score()) == [1.0]  # a new loop: the lock must not be bound to the old one
