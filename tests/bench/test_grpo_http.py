"""bench_grpo_http's machinery without a trainer: the schedule picks which transport answers each step."""

from __future__ import annotations

import asyncio

import pytest
from transformers import TrainerControl, TrainerState

from bench.bench_grpo_http import MODES, QWEN25_VL_3B, StepPhases, SwitchedRewards
from bench.support.paired import schedule
from trainer.feedback.timing import RewardPhaseTimer


class _Set:
    """A RewardSet's surface: timed functions that say which transport answered."""

    def __init__(self, mode: str):
        async def answer(prompts, completions, **kwargs):
            return [mode]

        self.timer = RewardPhaseTimer()
        self.functions = self.timer.wrap([answer])

    def first_abort(self):
        return None


class _Trainer:
    def _generate(self, prompts):
        return prompts


def test_each_step_is_answered_by_the_mode_the_schedule_names() -> None:
    rewards = SwitchedRewards({m: _Set(m) for m in MODES})
    assert [f.__name__ for f in rewards.functions] == ["answer"]
    order = schedule(MODES, pairs=2, warmup=1)
    phases = StepPhases(rewards, order)
    trainer = _Trainer()
    phases.attach(trainer)
    state, control = TrainerState(), TrainerControl()
    answered = []
    for step in range(len(order)):
        state.global_step = step
        phases.on_step_begin(None, state, control)
        assert trainer._generate(["p"]) == ["p"]
        answered += asyncio.run(rewards.functions[0](prompts=["p"], completions=["c"]))
        phases.on_step_end(None, state, control)
    assert answered == order == ["inproc", "inproc", "http", "http", "inproc"]
    assert [mode for mode, _ in phases.steps] == order
    for _, measured in phases.steps:
        assert set(measured) == {"generation", "rewards", "other", "step", "cpu"}
        assert measured["step"] == pytest.approx(measured["generation"] + measured["rewards"] + measured["other"])


def test_a_step_without_a_reward_phase_is_an_error_not_a_zero() -> None:
    rewards = SwitchedRewards({m: _Set(m) for m in MODES})
    phases = StepPhases(rewards, schedule(MODES, pairs=1))
    state = TrainerState()
    phases.on_step_begin(None, state, TrainerControl())
    with pytest.raises(RuntimeError, match="no reward phase"):
        phases.on_step_end(None, state, TrainerControl())


def test_the_3b_geometry_builds_a_consistent_config() -> None:
    from trainer.model.tiny_qwen import build_config, build_tokenizer

    tokenizer = build_tokenizer()
    config = build_config(tokenizer, **QWEN25_VL_3B)
    text = config.text_config
    assert (text.num_hidden_layers, text.hidden_size, text.intermediate_size) == (36, 2048, 11008)
    head_dim = text.hidden_size // text.num_attention_heads
    assert sum(text.rope_parameters["mrope_section"]) * 2 == head_dim  # M-RoPE covers each head
    assert config.vision_config.out_hidden_size == text.hidden_size
    assert text.vocab_size == len(tokenizer)
    # the tiny model's own geometry is untouched by the overrides' existence
    assert build_config(tokenizer).text_config.num_hidden_layers == 2
