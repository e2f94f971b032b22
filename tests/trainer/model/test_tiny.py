"""The tiny models: built offline, each family's real architecture and image geometry at toy size."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from trainer.model.loading import load_model
from trainer.model.tiny import TINY_VERSION, tiny_model_dir
from trainer.model.tiny_qwen import QWEN_SPECIAL_TOKENS
from trainer.recipe import ModelSection


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


# The other families: the checkpoints' published geometry, and the image-token counts it implies.
FAMILY_FACTS = {
    # HuggingFaceTB/SmolVLM2-2.2B-Instruct: 384-px tiles, patch 14, pixel shuffle 3 -> 81 per tile
    "smolvlm2": {"class": "SmolVLMForConditionalGeneration", "tile": 384, "patch": 14, "merge": 3,
                 "per_tile": 81, "image_token": "<image>"},
    # google/gemma-3-4b-it: SigLIP 896 px, patch 14, 256 tokens per image (4×4 average pooling)
    "gemma3": {"class": "Gemma3ForConditionalGeneration", "tile": 896, "patch": 14, "merge": 4,
               "per_tile": 256, "image_token": "<image_soft_token>"},
    # OpenGVLab/InternVL3-1B-hf: 448-px tiles, patch 14, pixel shuffle 0.5 -> 256 per tile
    "internvl3": {"class": "InternVLForConditionalGeneration", "tile": 448, "patch": 14, "merge": 2,
                  "per_tile": 256, "image_token": "<IMG_CONTEXT>"},
}


def _family(family):
    path = tiny_model_dir(family=family)
    return AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)


def _image_tokens(model, processor, size):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.new("RGB", size, "red")], return_tensors="pt")
    return text, inputs, int((inputs["input_ids"] == model.config.image_token_id).sum())


@pytest.mark.parametrize("family", sorted(FAMILY_FACTS))
def test_family_geometry_is_the_checkpoints(family):
    facts = FAMILY_FACTS[family]
    model, processor = _family(family)
    vision = model.config.vision_config
    assert type(model).__name__ == facts["class"]
    side = vision.image_size[0] if isinstance(vision.image_size, list) else vision.image_size
    patch = vision.patch_size[0] if isinstance(vision.patch_size, list) else vision.patch_size
    assert (side, patch) == (facts["tile"], facts["patch"])
    assert (side // patch // facts["merge"]) ** 2 == facts["per_tile"]
    assert processor.tokenizer.tokenize(facts["image_token"]) == [facts["image_token"]]
    assert model.config.image_token_id == processor.tokenizer.convert_tokens_to_ids(facts["image_token"])
    assert sum(p.numel() for p in model.parameters()) < 1_000_000


def test_smolvlm2_tiles_the_longest_edge_at_1536():
    model, processor = _family("smolvlm2")
    text, inputs, tokens = _image_tokens(model, processor, (640, 480))
    assert text == "<|im_start|>User:<image>How many?<end_of_utterance>\nAssistant:"
    assert tokens == (4 * 3 + 1) * 81  # 1536×1152 -> a 4×3 grid of 384-px tiles + the global tile
    # transformers 5.20.2's own merger fails on 1,053 tokens (not a multiple of 14); loading
    # through the trainer applies trainer/model/smolvlm_fix.py
    patched = load_model(ModelSection(id="tiny://smolvlm2", dtype="float32"))
    assert patched(**inputs).logits.shape[1] == inputs["input_ids"].shape[1]


def test_gemma3_always_sees_896_pixels():
    model, processor = _family("gemma3")
    text, inputs, tokens = _image_tokens(model, processor, (1800, 600))
    assert text.startswith("<bos><start_of_turn>user\n<start_of_image>How many?<end_of_turn>")
    assert inputs["pixel_values"].shape[-2:] == (896, 896) and tokens == 256


def test_internvl3_crops_into_448_tiles_plus_a_thumbnail():
    model, processor = _family("internvl3")
    text, _, one = _image_tokens(model, processor, (448, 448))
    assert text == "<|im_start|>user\n<IMG_CONTEXT>\nHow many?<|im_end|>\n<|im_start|>assistant\n"
    assert one == 256
    assert _image_tokens(model, processor, (896, 448))[2] == (2 + 1) * 256
