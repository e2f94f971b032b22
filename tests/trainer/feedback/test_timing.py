"""The reward phase timer: one span per step over every reward function, logged as timing/rewards_ms."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from transformers import TrainerControl, TrainerState
from trl.trainer.utils import is_async_callable

from trainer.feedback.panel import LivePanel
from trainer.feedback.plots import read_step_timing, reward_figure
from trainer.feedback.timing import METRIC, RewardPhaseTimer


class _Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def _concurrent(clock: _Clock):
    """Two async rewards as TRL runs them: `slow` runs t -> t + 0.5, `fast` t + 0.1 -> t + 0.3."""

    async def slow(prompts, completions, **kwargs):
        start = clock.now
        clock.now += 0.1
        await asyncio.sleep(0)  # lets `fast` start and finish
        clock.now = start + 0.5
        return [1.0]

    async def fast(prompts, completions, **kwargs):
        clock.now += 0.2
        return [0.0]

    return [slow, fast]


def _phase(functions, logged: list) -> list:
    kwargs = {"log_metric": lambda name, value: logged.append((name, value))}

    async def run():
        return await asyncio.gather(*(f(prompts=["q"], completions=["c"], **kwargs) for f in functions))

    return asyncio.run(run())


def test_the_phase_spans_first_start_to_last_end_not_the_sum_of_the_calls() -> None:
    clock = _Clock()
    timer = RewardPhaseTimer(clock)
    logged: list = []
    assert _phase(timer.wrap(_concurrent(clock)), logged) == [[1.0], [0.0]]
    # the step waited 500 ms: not the sum of the calls (700), nor from the last start (400)
    assert timer.last_ms == pytest.approx(500.0)
    assert logged == [(METRIC, pytest.approx(500.0))]


def test_each_step_is_one_phase_logged_once() -> None:
    clock = _Clock()
    timer = RewardPhaseTimer(clock)
    functions = timer.wrap(_concurrent(clock))
    logged: list = []
    _phase(functions, logged)
    clock.now = 20.0
    _phase(functions, logged)
    assert [m for m, _ in logged] == [METRIC, METRIC]
    assert timer.phases_ms == [pytest.approx(500.0), pytest.approx(500.0)]


def test_a_failing_reward_still_closes_its_phase() -> None:
    clock = _Clock()
    timer = RewardPhaseTimer(clock)

    def broken(prompts, completions, **kwargs):
        clock.now = 11.0
        raise RuntimeError("boom")

    (timed,) = timer.wrap([broken])
    with pytest.raises(RuntimeError):
        timed(prompts=["q"], completions=["c"])
    clock.now = 30.0
    timed_ok = timer.wrap([lambda prompts, completions, **kw: [1.0]])[0]
    timed_ok(prompts=["q"], completions=["c"])
    assert timer.phases_ms == [pytest.approx(1000.0), pytest.approx(0.0)]


def test_wrapped_functions_keep_their_names_and_trl_still_sees_which_are_async() -> None:
    async def answer(prompts, completions, **kwargs):
        return [1.0]

    def format_(prompts, completions, **kwargs):
        return [1.0]

    answer.remote = "kept"  # the trainer's functions carry their RemoteReward
    timed_async, timed_sync = RewardPhaseTimer().wrap([answer, format_])
    assert (timed_async.__name__, timed_sync.__name__) == ("answer", "format_")
    assert is_async_callable(timed_async) and not is_async_callable(timed_sync)
    assert timed_async.remote == "kept"


def _metrics(tmp_path: Path) -> Path:
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": 1, "reward": 0.5, "step_time": 2.0, METRIC: 40.0},
            {"step": 2, "reward": 0.6, "step_time": 1.0, METRIC: None},  # every reward failed to log
            {"step": 3, "reward": 0.7, "step_time": 1.0, METRIC: 20.0},
            {"step": 4, "reward": 0.8, "step_time": 1.0, METRIC: 30.0}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_figure_shows_the_reward_phase_share_of_each_step(tmp_path: Path) -> None:
    metrics = _metrics(tmp_path)
    assert read_step_timing(metrics) == [(1, 40.0, 2000.0), (3, 20.0, 1000.0), (4, 30.0, 1000.0)]
    (share,) = [ax for ax in reward_figure(metrics).axes if ax.get_title().startswith("reward phase")]
    assert share.get_title() == "reward phase: 2 % of the step (30 ms of 1 s, medians)"
    assert list(share.get_lines()[0].get_ydata()) == pytest.approx([2.0, 2.0, 3.0])


def test_the_live_panel_says_how_much_of_the_step_the_rewards_take() -> None:
    buffer = io.StringIO()
    panel = LivePanel(Console(file=buffer, force_terminal=True, width=140, color_system=None))
    state = TrainerState()
    state.global_step, state.max_steps = 3, 10
    panel.on_train_begin(None, state, TrainerControl())
    panel.on_log(None, state, TrainerControl(), logs={"loss": 0.1, "step_time": 1.25, METRIC: 25.0})
    panel.on_train_end(None, state, TrainerControl())
    assert "step 1.25 s   reward phase 25 ms (2 % of the step)" in buffer.getvalue()
