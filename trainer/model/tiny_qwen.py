"""The tiny random-initialised Qwen2.5-VL: real architecture and processor at toy size (~200k parameters).

The same code paths run as for Qwen/Qwen2.5-VL-3B-Instruct: the processor and chat template,
M-RoPE, the vision tower and its merger, LoRA on q/k/v, TRL's VLM handling.
"""

from __future__ import annotations

import logging
from pathlib import Path

from trainer.model.tiny_common import LM_HEAD_STD, bpe_tokenizer

log = logging.getLogger(__name__)

QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
    "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]
# Qwen's image processor works in 28-pixel units (patch 14 × merge 2): 56² gives 4 image tokens,
# 112² gives 16, which keeps a prompt short while the vision tower still runs.
MIN_PIXELS, MAX_PIXELS = 56 * 56, 112 * 112


def build_tiny_vlm(out_dir: str | Path, seed: int = 0) -> Path:
    """Build the tiny model, its tokenizer and processor, and save them to `out_dir`."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    out = Path(out_dir)
    processor = build_processor()
    config = build_config(processor.tokenizer)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    with torch.no_grad():
        # At the default init (std 0.02) the head's logits barely differ: the next-token distribution
        # is almost uniform whatever the hidden state, so LoRA below the head (TRL refuses LoRA on
        # lm_head) cannot reshape it. A wider head makes the random model as peaked as a trained one.
        model.lm_head.weight.normal_(0.0, LM_HEAD_STD)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.bos_token_id = config.text_config.bos_token_id
    model.save_pretrained(out)
    processor.save_pretrained(out)
    n = sum(p.numel() for p in model.parameters())
    log.info("built tiny Qwen2.5-VL (%d parameters) in %s", n, out)
    return out


def build_config(tokenizer, text: dict | None = None, vision: dict | None = None, **top):
    """The tiny geometry; `text`, `vision` and `top` override it (a benchmark builds a real size)."""
    from transformers import Qwen2_5_VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        # head_dim 16 -> 8 rotary frequencies, split over (time, height, width)
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    vision_config = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "out_hidden_size": 64,
        "window_size": 112,
        "fullatt_block_indexes": [1],
    }
    return Qwen2_5_VLConfig(
        text_config={**text_config, **(text or {})},
        vision_config={**vision_config, **(vision or {})},
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        **{"tie_word_embeddings": False, **top},
    )


def build_processor():
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    tokenizer = build_tokenizer()
    image_processor = Qwen2VLImageProcessor(
        min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch_size=14, temporal_patch_size=2, merge_size=2
    )
    video_processor = Qwen2VLVideoProcessor(
        min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch_size=14, temporal_patch_size=2, merge_size=2
    )
    tokenizer.chat_template = qwen2_5_vl_chat_template
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=qwen2_5_vl_chat_template,
    )


def build_tokenizer():
    """A byte-level BPE of ~512 tokens with Qwen's special tokens kept whole."""
    return bpe_tokenizer(QWEN_SPECIAL_TOKENS, eos_token="<|im_end|>", pad_token="<|endoftext|>")
