"""End to end: the tiny VLM trains against real reward services on 127.0.0.1 and saves an adapter."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForImageTextToText, AutoProcessor

from rewardstack.serve.launch import launch_services
from tests.trainer.trainrun import Snapshot, tiny_recipe
from trainer.merge import merge_adapter
from trainer.model.tiny import tiny_model_dir
from trainer.train import ResumeError, resolve_resume, run_training


@pytest.fixture(scope="module")
def urls():
    with launch_services(["regex_format", "vqa_accuracy"]) as found:
        yield found


def _rewards(urls):
    return [
        {"name": "format", "url": urls["regex_format"], "params": {"mode": "think_answer", "partial": True},
         "send_images": False},
        {"name": "answer", "url": urls["vqa_accuracy"], "params": {"mode": "fuzzy", "threshold": 0.0},
         "weight": 2.0},
    ]


@pytest.fixture(scope="module")
def run(urls, tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e")
    snap = Snapshot()
    result = run_training(tiny_recipe(out, _rewards(urls)), callbacks=[snap])
    return result, snap


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_per_reward_metrics_are_logged_each_step(run):
    out, _ = run
    steps = [m for m in _metrics(out) if "loss" in m]
    assert [m["step"] for m in steps] == [1, 2, 3]
    for m in steps:
        assert 0.0 <= m["rewards/format/mean"] <= 1.0
        assert 0.0 <= m["rewards/answer/mean"] <= 1.0
        assert m["rewards/format/failed"] == 0.0 and m["rewards/answer/failed"] == 0.0
        assert m["rewards/answer/latency_ms"] > 0
        # the reward phase spans both concurrent calls, so it is at least as long as either
        assert m["timing/rewards_ms"] >= max(m["rewards/answer/latency_ms"], m["rewards/format/latency_ms"])
        assert m["step_time"] * 1000 > m["timing/rewards_ms"]
        # TRL's total is the weighted sum of the per-reward means (weights 1 and 2 here)
        assert m["reward"] == pytest.approx(m["rewards/format/mean"] + 2 * m["rewards/answer/mean"], abs=1e-5)


def test_trainable_parameters_changed_and_frozen_ones_did_not(run):
    _, snap = run
    assert snap.before and all("lora_" in n for n in snap.before)
    changed = [n for n, t in snap.before.items() if not torch.equal(t, snap.after[n])]
    assert changed, "no trainable parameter moved in 3 steps"
    assert snap.frozen_changed == []


def test_adapter_is_saved_and_reloads_to_the_trained_weights(run):
    out, snap = run
    adapter = out / "adapter"
    for name in ("adapter_config.json", "adapter_model.safetensors", "resolved_recipe.yaml",
                 "tokenizer_config.json"):
        assert (adapter / name).is_file(), name
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir())
    model = PeftModel.from_pretrained(base, str(adapter))
    loaded = dict(model.named_parameters())
    for name, trained in snap.after.items():
        assert torch.equal(loaded[name], trained), name
    assert (out / "resolved_recipe.yaml").is_file() and (out / "rewards.png").is_file()
    assert AutoProcessor.from_pretrained(adapter).tokenizer.padding_side == "left"


def test_merge_gives_the_same_logits_as_base_plus_adapter(run, tmp_path):
    out, _ = run
    merged_dir = merge_adapter(out / "adapter", tmp_path / "merged")
    merged = AutoModelForImageTextToText.from_pretrained(merged_dir)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    peft = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(tiny_model_dir()),
                                     str(out / "adapter"))
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir())
    ids = torch.tensor([[1, 5, 9, 42, 100, 7]])
    with torch.no_grad():
        expected, got, plain = (m(input_ids=ids).logits for m in (peft, merged, base))
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, plain, atol=1e-5)  # the merge carried the training
    assert (merged_dir / "tokenizer_config.json").is_file()


def test_resume_auto_continues_from_the_last_checkpoint(run, urls, caplog):
    out, _ = run
    recipe = tiny_recipe(out, _rewards(urls), max_steps=4).model_copy(update={"resume": "auto"})
    with caplog.at_level(logging.INFO, logger="trainer.train"):
        run_training(recipe)
    assert "resume: auto, resuming from" in caplog.text and "checkpoint-3" in caplog.text
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert [m["step"] for m in _metrics(out) if "loss" in m] == [1, 2, 3, 4]


def test_resume_rules(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="trainer.train"):
        assert resolve_resume("auto", tmp_path) is None
    assert "found no checkpoint" in caplog.text and "starting fresh" in caplog.text
    with pytest.raises(ResumeError, match="not a checkpoint directory"):
        resolve_resume(tmp_path / "checkpoint-9", tmp_path)
    ckpt = tmp_path / "checkpoint-2"
    ckpt.mkdir()
    (ckpt / "trainer_state.json").write_text("{}")
    assert resolve_resume(ckpt, tmp_path) == str(ckpt)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="trainer.train"):
        assert resolve_resume(False, tmp_path) is None
    assert "starting fresh although" in caplog.text
