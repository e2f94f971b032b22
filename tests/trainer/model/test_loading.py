"""Model loading from the recipe: dtype, 4-bit refusal on CPU, frozen vision, LoRA targets, full FT."""

from __future__ import annotations

import pytest
import torch
from peft import get_peft_model
from transformers import AutoModelForImageTextToText

from tests.trainer.trainrun import Snapshot, tiny_recipe
from trainer.model.loading import (
    ModelLoadError,
    load_model,
    load_processor,
    lora_config,
    resolve_model_id,
    vision_tower,
)
from trainer.model.tiny import tiny_model_dir
from trainer.recipe import LoraSection, ModelSection
from trainer.train import run_training

TINY = "tiny://qwen2.5-vl"


def test_tiny_scheme_resolves_to_the_built_model():
    assert resolve_model_id(TINY) == str(tiny_model_dir())
    assert resolve_model_id("Qwen/Qwen2.5-VL-3B-Instruct") == "Qwen/Qwen2.5-VL-3B-Instruct"
    with pytest.raises(ModelLoadError, match=r"tiny models are tiny://qwen2\.5-vl, tiny://smolvlm2"):
        resolve_model_id("tiny://llava")


def test_language_only_is_the_default():
    assert LoraSection().language_only is True


def test_dtype_and_left_padding():
    model = load_model(ModelSection(id=TINY, dtype="bfloat16", attn_implementation="eager"))
    assert next(model.parameters()).dtype == torch.bfloat16
    assert model.config._attn_implementation == "eager"
    assert load_processor(ModelSection(id=TINY)).tokenizer.padding_side == "left"


def test_four_bit_without_a_gpu_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelLoadError, match=r"load_in_4bit needs a CUDA GPU.*load_in_4bit=false"):
        load_model(ModelSection(id=TINY, load_in_4bit=True))


def test_freeze_vision_freezes_the_tower_only():
    model = load_model(ModelSection(id=TINY, freeze_vision=True))
    tower = vision_tower(model)
    assert tower is not None and not any(p.requires_grad for p in tower.parameters())
    assert all(p.requires_grad for n, p in model.named_parameters() if "language_model" in n)


@pytest.mark.parametrize("language_only", [True, False])
def test_lora_language_only_keeps_adapters_out_of_the_vision_tower(language_only):
    # Qwen2.5-VL's vision blocks have gate/up/down_proj too: a bare name list would reach them.
    section = LoraSection(r=4, target_modules=["q_proj", "gate_proj"], language_only=language_only)
    model = get_peft_model(AutoModelForImageTextToText.from_pretrained(tiny_model_dir()), lora_config(section))
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in model.named_parameters() if ".lora_A" in n}
    assert any("language_model" in n and n.endswith("q_proj") for n in adapted)
    assert any("visual" in n for n in adapted) is (not language_only)


def test_no_lora_means_no_peft_config():
    assert lora_config(None) is None


def test_full_fine_tuning_with_frozen_vision_saves_the_whole_model(tmp_path):
    # fuzzy answer similarity varies within a group from the first step, so there is a gradient
    answer = {"name": "answer", "url": "inproc://vqa_accuracy", "params": {"mode": "fuzzy", "threshold": 0.0}}
    recipe = tiny_recipe(tmp_path, [answer], max_steps=2, learning_rate=1e-3)
    raw = recipe.model_dump(mode="json") | {"lora": None}
    raw["model"]["freeze_vision"] = True
    recipe = type(recipe).model_validate(raw)
    snap = Snapshot()
    out = run_training(recipe, callbacks=[snap])
    assert not (out / "adapter").exists()
    saved = AutoModelForImageTextToText.from_pretrained(out / "model")
    assert not any("visual" in n for n in snap.before)  # frozen, so never trainable
    assert snap.frozen_changed == []
    changed = [n for n, t in snap.before.items() if not torch.equal(t, snap.after[n])]
    assert any("language_model" in n for n in changed)
    weights = dict(saved.named_parameters())
    name = next(n for n in changed if n in weights)
    assert torch.equal(weights[name], snap.after[name])
