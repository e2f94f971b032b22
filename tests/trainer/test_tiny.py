"""The tiny Qwen2.5-VL: built offline, the real architecture at toy size, cached once per version."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from trainer.tiny import QWEN_SPECIAL_TOKENS, TINY_VERSION, tiny_model_dir


@pytest.fixture(scope="module")
def built():
    path = tiny_model_dir()
    return path, AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)


def test_architecture_matches_the_facts(built):
    _, model, _ = built
    text, vision = model.config.text_config, model.config.vision_config
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads) == (64, 2, 4)
    assert text.num_key_value_heads == 2
    head_dim = text.hidden_size // text.num_attention_heads
    assert sum(text.rope_parameters["mrope_section"]) * 2 == head_dim
    assert (vision.depth, vision.hidden_size, vision.patch_size, vision.out_hidden_size) == (2, 32, 14, 64)
    assert 150_000 < sum(p.numel() for p in model.parameters()) < 300_000


def test_special_tokens_stay_whole_and_ids_agree(built):
    _, model, processor = built
    tok = processor.tokenizer
    for t in QWEN_SPECIAL_TOKENS:
        assert tok.tokenize(t) == [t]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert tok.padding_side == "left"
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert model.generation_config.eos_token_id == tok.eos_token_id
    assert 400 < len(tok) <= 512


def test_chat_template_and_image_tokens(built):
    _, model, processor = built
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n")
    assert "<|vision_start|><|image_pad|><|vision_end|>How many?<|im_end|>" in text
    image_id = model.config.image_token_id
    # 56² is the smallest image (4 visual tokens); larger ones are shrunk to at most 112² (16)
    counts = {}
    for side in (20, 56, 112, 300):
        inputs = processor(text=[text], images=[Image.new("RGB", (side, side), "red")], return_tensors="pt")
        counts[side] = int((inputs["input_ids"] == image_id).sum())
    assert counts[20] == counts[56] == 4
    assert counts[112] == 16
    assert 4 <= counts[300] <= 16


def test_generates_and_backpropagates(built):
    _, model, processor = built
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Colour?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.new("RGB", (56, 56), "blue")], return_tensors="pt")
    torch.manual_seed(0)
    out = model.generate(**inputs, max_new_tokens=5, do_sample=True)
    assert out.shape[1] > inputs["input_ids"].shape[1]
    loss = model(**inputs, labels=inputs["input_ids"]).loss
    loss.backward()
    assert model.model.visual.patch_embed.proj.weight.grad.abs().sum() > 0


def test_cache_is_built_once_and_versioned(tmp_path):
    first = tiny_model_dir(tmp_path)
    assert first == tmp_path / f"v{TINY_VERSION}"
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert tiny_model_dir(tmp_path) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".building-")]


def test_build_is_deterministic(tmp_path, built):
    _, model, _ = built
    other = AutoModelForImageTextToText.from_pretrained(tiny_model_dir(tmp_path))
    for (name, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
