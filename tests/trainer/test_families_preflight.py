"""The token preflight, the processor options and the SmolVLM merger fix, without training."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig

from tests.trainer.familyrun import family_recipe
from trainer.model import loading as model_module
from trainer.model import smolvlm_fix
from trainer.model.loading import ModelLoadError, load_processor, resolve_model_id
from trainer.preflight_tokens import TokenBudgetError, check_token_budget, longest_prompt
from trainer.recipe import ModelSection, ProcessorSection
from trainer.train import run_training

URLS = {"regex_format": "inproc://regex_format", "vqa_accuracy": "inproc://vqa_accuracy"}


def _no_weights(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded before the token preflight")
    monkeypatch.setattr(model_module, "load_model", refuse)


def test_overflowing_image_tokens_are_refused_before_weights_load(tmp_path, monkeypatch):
    # tiny Qwen2.5-VL has a 2,048-token context; 1,400² pixels are 50² = 2,500 image tokens
    recipe = family_recipe("qwen2.5-vl", tmp_path, URLS)
    raw = recipe.model_dump(mode="json")
    raw["data"]["image_size"] = 1400
    raw["processor"]["max_pixels"] = 1400 * 1400
    _no_weights(monkeypatch)
    with pytest.raises(TokenBudgetError) as caught:
        run_training(type(recipe).model_validate(raw))
    message = str(caught.value)
    assert "2500 of them image tokens" in message and "max_position_embeddings) = 2048" in message
    for field in ("processor.max_pixels", "data.image_size", "grpo.max_completion_length"):
        assert field in message


def test_vllm_is_checked_with_the_checkpoints_own_processor(tmp_path):
    # The recipe's one-tile SmolVLM fits 600 tokens; vLLM ignores processor: and sees the
    # checkpoint's 1536-px tiling, 17 tiles × 81 = 1,377 image tokens.
    recipe = family_recipe("smolvlm2", tmp_path, URLS)
    raw = recipe.model_dump(mode="json")
    raw["processor"] = {"do_image_splitting": False}
    raw["vllm"] = {"mode": "colocate", "max_model_length": 600}
    recipe = type(recipe).model_validate(raw)
    rows = [_row()]
    assert check_token_budget(recipe, rows, max_new_tokens=8, use_vllm=False).image == 81
    with pytest.raises(TokenBudgetError, match=r"1377 of them image tokens.*vllm\.max_model_length"):
        check_token_budget(recipe, rows, max_new_tokens=8, use_vllm=True)


def test_eval_runs_the_preflight_before_loading(tmp_path, monkeypatch):
    from trainer.evaluate import run_eval

    recipe = family_recipe("smolvlm2", tmp_path, URLS)
    _no_weights(monkeypatch)
    with pytest.raises(TokenBudgetError, match=r"grpo\.max_completion_length 5000"):
        run_eval(recipe, adapter=None, limit=1, out_dir=tmp_path / "eval", max_new_tokens=5000,
                 backend="transformers")


@pytest.mark.parametrize(("family", "option"), [("gemma3", {"max_pixels": 1000}),
                                                ("qwen2.5-vl", {"max_patches": 2}),
                                                ("internvl3", {"do_image_splitting": False})])
def test_an_option_the_processor_does_not_have_is_refused(family, option):
    with pytest.raises(ModelLoadError, match=f"processor.{next(iter(option))} does not apply"):
        load_processor(ModelSection(id=f"tiny://{family}"), options=ProcessorSection(**option))


def test_smolvlm_merger_fix_matches_transformers_where_transformers_works():
    # transformers' merger is right when every sample's image tokens are a multiple of patch_size
    # (14): compare there, on random features, then check the fix also takes a tile of 81.
    from transformers import SmolVLMConfig
    from transformers.models.smolvlm.modeling_smolvlm import SmolVLMModel

    original = getattr(SmolVLMModel.inputs_merger, "__wrapped_original__", SmolVLMModel.inputs_merger)
    config = SmolVLMConfig(text_config={"model_type": "llama", "vocab_size": 32, "hidden_size": 8,
                                        "num_hidden_layers": 1, "num_attention_heads": 2,
                                        "intermediate_size": 16},
                           vision_config={"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
                                          "intermediate_size": 16, "patch_size": 14, "image_size": 28},
                           image_token_id=3)
    model = SmolVLMModel(config)
    torch.manual_seed(0)
    ids = torch.tensor([[1] * 3 + [3] * 28 + [2] * 2, [1] + [3] * 14 + [2] * 18])
    embeds = torch.randn(2, ids.shape[1], 8)
    features = torch.randn(42, 8).view(3, 14, 8)
    expected = original(model, ids, embeds, features)
    assert torch.equal(smolvlm_fix._inputs_merger(model, ids, embeds, features), expected)
    tile = torch.randn(1, 81, 8)
    ids81 = torch.tensor([[1] + [3] * 81 + [2]])
    merged = smolvlm_fix._inputs_merger(model, ids81, torch.randn(1, 83, 8), tile)
    assert torch.equal(merged[0, 1:82], tile[0])
    with pytest.raises(ValueError, match="82 <image> tokens in the text but 81"):
        smolvlm_fix._inputs_merger(model, torch.tensor([[3] * 82]), torch.randn(1, 82, 8), tile)


def _row():
    from PIL import Image

    from trainer.data.config import DataConfig
    from trainer.data.rows import build_prompt

    cfg = DataConfig(source="synthetic", format_instruction="Answer in <answer></answer>.")
    return {"prompt": build_prompt("How many circles?", cfg), "image": Image.new("RGB", (640, 640), "red")}


# What each shipped recipe's comments promise about image tokens, per image, whatever its size.
PROMISED_IMAGE_TOKENS = {"smolvlm2": 405, "gemma3": 256, "internvl3": 256, "qwen2.5-vl": 1024}


@pytest.mark.parametrize("family", sorted(PROMISED_IMAGE_TOKENS))
def test_shipped_recipes_keep_the_image_tokens_their_comments_promise(family, tmp_path):
    from PIL import Image

    recipe = family_recipe(family, tmp_path, URLS)
    processor = load_processor(recipe.model, options=recipe.processor)
    image_token = AutoConfig.from_pretrained(resolve_model_id(recipe.model.id)).image_token_id
    size = recipe.data.image_size or (2000, 1500)  # a recipe without image_size sees raw images
    row = _row() | {"image": Image.new("RGB", size, "red")}
    assert longest_prompt(processor, [row], image_token).image == PROMISED_IMAGE_TOKENS[family]


def test_training_arguments_exist_before_the_model_loads(tmp_path, monkeypatch):
    # Under accelerate + DeepSpeed ZeRO-3, GRPOConfig registers the DeepSpeed config that
    # from_pretrained needs to load the weights sharded (zero3_init_flag).
    import trl

    from trainer.rewards import RewardSet
    from trainer.train import build_trainer

    made = []

    class Recorded(trl.GRPOConfig):
        def __post_init__(self):
            made.append("args")
            super().__post_init__()

    def load(section):
        made.append("model")
        raise RuntimeError("stop here")

    monkeypatch.setattr(trl, "GRPOConfig", Recorded)
    monkeypatch.setattr(model_module, "load_model", load)
    recipe = family_recipe("qwen2.5-vl", tmp_path, URLS)
    with pytest.raises(RuntimeError, match="stop here"):
        build_trainer(recipe, RewardSet(recipe.rewards), dataset=[])
    assert made == ["args", "model"]
