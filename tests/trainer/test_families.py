"""Every seed's family trains, evaluates and merges: its shipped recipe on a tiny model of its geometry.

Per family: 2 GRPO steps against reward services over HTTP with a gradient (grad norm > 0), the
adapter only on the language model, `eval` with the transformers backend, and `merge`, whose
model must give the same logits as base + adapter. Training and eval raise no warning and make
the libraries log none (the processor options and the recipes' loss settings are as they want).
"""

from __future__ import annotations

import json
import logging
import re

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForImageTextToText

from rewardstack.serve.launch import launch_services
from tests.trainer.familyrun import FAMILY_RECIPES, family_recipe, no_warnings_from_our_calls
from trainer.evaluate import run_eval
from trainer.merge import merge_adapter
from trainer.model import smolvlm_fix
from trainer.model.loading import lora_placement, resolve_model_id
from trainer.train import run_training

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def urls():
    with launch_services(["regex_format", "vqa_accuracy"]) as found:
        yield found


@pytest.mark.parametrize("family", sorted(FAMILY_RECIPES))
def test_shipped_recipe_trains_evaluates_and_merges(family, urls, tmp_path, caplog):
    recipe = family_recipe(family, tmp_path / "run", urls)
    with caplog.at_level(logging.INFO, logger="trainer.train"), no_warnings_from_our_calls():
        out = run_training(recipe)
    assert re.search(r"LoRA adapters on [1-9]\d* language-model modules and 0 vision modules", caplog.text)

    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [m for m in steps if "loss" in m]
    assert [m["step"] for m in steps] == [1, 2]
    assert any(m["grad_norm"] > 0 for m in steps), f"{family}: no gradient in 2 steps: {steps}"

    base_dir = resolve_model_id(recipe.model.id)
    peft = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(base_dir), str(out / "adapter"))
    placed = lora_placement(peft)
    assert placed["language"] > 0 and placed["vision"] == 0, placed

    with no_warnings_from_our_calls():
        evaluated = run_eval(recipe, adapter=out / "adapter", limit=2, out_dir=tmp_path / "eval",
                             batch_size=2, max_new_tokens=4, backend="transformers")
    summary = {row["reward"]: row for row in json.loads((evaluated / "summary.json").read_text())}
    assert summary["answer"]["n"] == 2 and summary["answer"]["scored"] == 2

    merged = AutoModelForImageTextToText.from_pretrained(merge_adapter(out / "adapter", tmp_path / "merged"))
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    ids = torch.tensor([[1, 5, 9, 42, 100, 7]])
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, peft(input_ids=ids).logits, atol=1e-5)


def test_smolvlm_patch_is_still_needed_under_the_pin():
    # When this fails, transformers fixed SmolVLM's inputs_merger: delete trainer/model/smolvlm_fix.py.
    assert smolvlm_fix.needs_fix()
