"""The public TRL helper inside a plain GRPOTrainer (the tiny VLM), with no rewardstack recipe at all."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from PIL import Image

from integrations.trl import RewardCallError, remote_rewards
from tests.helpers import free_port
from tests.services.gateway.support import rewards

GOOD = "<think>two</think><answer>2</answer>"


def test_functions_are_named_coroutines_with_weights(svc):
    funcs, weights = remote_rewards(rewards(svc))
    assert [f.__name__ for f in funcs] == ["format", "answer"]
    assert all(inspect.iscoroutinefunction(f) for f in funcs)
    assert weights == [0.5, 1.0]


def test_none_is_kept_and_each_image_sent_once(svc):
    funcs, _ = remote_rewards(rewards(svc))
    red, blue = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
    out = asyncio.run(funcs[1](prompts=["q"] * 3, completions=[GOOD, "<answer>3</answer>", "no tag"],
                               image=[red, red, blue], answers=[["2"]] * 3))
    assert out[:2] == [1.0, 0.0]
    sent = svc["answer"][1].bodies[-1]
    assert len(sent["images"]) == 2 and all("b64" in v for v in sent["images"].values())


def test_a_blank_reference_is_none(svc):
    funcs, _ = remote_rewards(rewards(svc))
    blanks = ["", "  ", [], ["", " "], None]
    out = asyncio.run(funcs[1](prompts=["q"] * 5, completions=[GOOD] * 5, answers=blanks))
    assert out == [None] * 5


def test_a_dead_service_is_none_under_skip_and_raises_under_abort():
    dead = f"http://127.0.0.1:{free_port()}"
    (skip,), _ = remote_rewards([{"name": "f", "url": dead, "unreachable_s": 0.2}])
    assert asyncio.run(skip(prompts=["q"], completions=["c"])) == [None]
    (abort,), _ = remote_rewards([{"name": "f", "url": dead, "unreachable_s": 0.2, "on_error": "abort"}])
    with pytest.raises(RewardCallError, match=f"reward 'f' at {dead}"):
        asyncio.run(abort(prompts=["q"], completions=["c"]))


@pytest.mark.slow
def test_inside_a_plain_grpo_trainer_rewards_are_logged_under_each_name(svc, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from trainer.model.tiny import tiny_model_dir

    path = tiny_model_dir()
    prompt = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many circles?"}]}]
    images = [Image.new("RGB", (56, 56), c) for c in ("red", "green", "blue", "white")]
    dataset = Dataset.from_dict({"prompt": [prompt] * 4, "image": images, "answers": [["2"]] * 4})
    funcs, weights = remote_rewards(rewards(svc))
    before = svc["answer"][1].calls
    trainer = GRPOTrainer(
        model=AutoModelForImageTextToText.from_pretrained(path, dtype="float32"),
        reward_funcs=funcs,
        args=GRPOConfig(output_dir=str(tmp_path), reward_weights=weights, per_device_train_batch_size=4,
                        num_generations=4, max_completion_length=4, max_steps=2, logging_steps=1,
                        report_to="none", save_strategy="no", bf16=False, dataloader_pin_memory=False,
                        seed=0),
        train_dataset=dataset,
        processing_class=AutoProcessor.from_pretrained(path),
    )
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 2
    for h in logged:
        assert "rewards/format/mean" in h and "rewards/answer/mean" in h
        assert h["rewards/format/failed"] == 0.0 and h["rewards/answer/failed"] == 0.0
        assert h["reward"] == pytest.approx(0.5 * h["rewards/format/mean"] + h["rewards/answer/mean"], abs=1e-5)
    sent = svc["answer"][1].bodies[before:]
    assert len(sent) == 2  # one request per step for the whole batch
    # one prompt per step, its 4 completions share one image sent once as base64
    assert all(len(b["items"]) == 4 and len(b["images"]) == 1 for b in sent)
