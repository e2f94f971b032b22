"""A reward service stopped mid-run: `skip` trains on with nulls, `abort` checkpoints and names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import TrainerCallback

from tests.helpers import serve_app, service_process
from tests.trainer.trainrun import tiny_recipe
from trainer.rewards import RewardAbort
from trainer.train import run_training


class KillAfterStep(TrainerCallback):
    """Stops the service process once the given optimizer step is done."""

    def __init__(self, proc, step: int) -> None:
        self.proc, self.step = proc, step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def answer_url():
    from services.common.app import create_app
    from services.vqa_accuracy.scorer import VqaAccuracyScorer
    from services.vqa_accuracy.settings import VqaAccuracySettings

    settings = VqaAccuracySettings()
    with serve_app(create_app(VqaAccuracyScorer(settings), settings)) as url:
        yield url


def _rewards(format_url: str, answer_url: str, **policy) -> list[dict]:
    return [
        {"name": "format", "url": format_url, "params": {"partial": True}, "timeout_s": 1.0, **policy},
        {"name": "answer", "url": answer_url, "params": {"mode": "fuzzy", "threshold": 0.0}},
    ]


def _steps(out: Path) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [m for m in map(json.loads, lines) if "loss" in m]


def test_skip_keeps_training_with_nulls_and_the_failed_metric(tmp_path, answer_url):
    with service_process("services.regex_format.main:app") as (format_url, proc):
        rewards = _rewards(format_url, answer_url, on_error="skip", max_failed_fraction=1.0)
        out = run_training(tiny_recipe(tmp_path, rewards), callbacks=[KillAfterStep(proc, 1)])
    steps = _steps(out)
    assert [m["step"] for m in steps] == [1, 2, 3]
    assert [m["rewards/format/failed"] for m in steps] == [0.0, 1.0, 1.0]
    assert steps[0]["rewards/format/mean"] is not None
    assert steps[1]["rewards/format/mean"] is None and steps[2]["rewards/format/mean"] is None
    assert all(m["rewards/answer/mean"] is not None for m in steps)  # the other reward still counts
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


def test_abort_stops_with_a_checkpoint_and_names_the_service(tmp_path, answer_url):
    with service_process("services.regex_format.main:app") as (format_url, proc):
        rewards = _rewards(format_url, answer_url, on_error="abort")
        with pytest.raises(RewardAbort) as err:
            run_training(tiny_recipe(tmp_path, rewards, max_steps=5), callbacks=[KillAfterStep(proc, 1)])
    assert err.value.reward == "format" and err.value.url == format_url
    assert f"reward 'format' at {format_url}" in str(err.value)
    state = json.loads((tmp_path / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2  # the step that met the failure, checkpointed, then stopped
    assert not (tmp_path / "checkpoint-3").exists()
    assert not (tmp_path / "adapter").exists()  # no final adapter from an aborted run
    assert _steps(tmp_path)[-1]["rewards/format/failed"] == 1.0  # the last step's log was written


def test_skip_stops_once_the_window_holds_too_many_failures(tmp_path, answer_url):
    with service_process("services.regex_format.main:app") as (format_url, proc):
        # window 10 × 0.1 = 1 failure tolerated: the 2nd (step 3) stops the run
        rewards = _rewards(format_url, answer_url, on_error="skip", max_failed_fraction=0.1, window=10)
        with pytest.raises(RewardAbort, match=r"2 of the last 3 calls failed"):
            run_training(tiny_recipe(tmp_path, rewards, max_steps=6), callbacks=[KillAfterStep(proc, 1)])
    assert (tmp_path / "checkpoint-3" / "trainer_state.json").is_file()
    assert [m["rewards/format/failed"] for m in _steps(tmp_path)] == [0.0, 1.0, 1.0]
