"""A tiny random-initialised Qwen2.5-VL built on the spot, for the CPU demo, tests and benchmarks.

(`tiny_model_dir(family=...)` also builds the other families, see trainer.tiny_families.)

Nothing is downloaded: the tokenizer is a byte-level BPE trained here on a small corpus, the
weights are random (seeded), and the architecture is real Qwen2.5-VL at toy size (~200k
parameters), so the same code paths run as for Qwen/Qwen2.5-VL-3B-Instruct: the processor and
chat template, M-RoPE, the vision tower and its merger, LoRA on q/k/v, TRL's VLM handling.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Bump when the build changes, so stale caches are rebuilt instead of reused.
TINY_VERSION = "2"
DEFAULT_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "tiny-qwen2.5-vl"
# `tiny://<family>` model ids; every family but Qwen2.5-VL is built by trainer.tiny_families.
FAMILIES = ("qwen2.5-vl", "smolvlm2", "gemma3", "internvl3")

QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
    "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]
VOCAB_SIZE = 512
# Qwen's image processor works in 28-pixel units (patch 14 × merge 2): 56² gives 4 image tokens,
# 112² gives 16, which keeps a prompt short while the vision tower still runs.
MIN_PIXELS, MAX_PIXELS = 56 * 56, 112 * 112
LM_HEAD_STD = 0.25

_WORDS = (  # noqa: SIM905 - a sentence reads better than 70 quoted words
    "the a an of in on is are how many what which color colour shape shapes image picture there "
    "red green blue yellow purple orange black white gray circle circles square squares triangle "
    "triangles star count answer question think reason because so total number left right top "
    "bottom one two three four five six seven eight nine ten zero yes no plus minus times equals "
    "x y value solve find step first then final"
).split()
_TAGS = ["<think>", "</think>", "<answer>", "</answer>", "\\boxed{", "}", "$", "=", "+", "-"]


def tiny_model_dir(cache_root: str | Path | None = None, family: str = "qwen2.5-vl") -> Path:
    """The directory of a built tiny model (model + processor), building it once per cache.

    `family` is one of FAMILIES; the Qwen2.5-VL model lives at the cache root itself, the others in
    a sub-folder named after the family.
    """
    if family not in FAMILIES:
        raise ValueError(f"no tiny model for {family!r}; choose one of {', '.join(FAMILIES)}")
    root = Path(cache_root or os.environ.get("REWARDSTACK_TINY_CACHE") or DEFAULT_CACHE)
    if family != "qwen2.5-vl":
        root = root / family
    target = root / f"v{TINY_VERSION}"
    if (target / "config.json").exists() and (target / "processor_config.json").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    return build_atomically(target, _builder(family))


def build_atomically(target: Path, build: Callable[[Path], Any]) -> Path:
    """`build(tmp)` into a folder beside `target`, then rename it into place: concurrent test
    sessions never see half a model, and the first finished build wins."""
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        build(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _builder(family: str):
    if family == "qwen2.5-vl":
        return build_tiny_vlm
    from trainer.tiny_families import BUILDERS

    return BUILDERS[family]


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


def build_config(tokenizer):
    from transformers import Qwen2_5_VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    text = {
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
    vision = {
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
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
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


def bpe_tokenizer(special_tokens: list[str], *, eos_token: str, pad_token: str,
                  bos_token: str | None = None, vocab_size: int = VOCAB_SIZE, **extra: object):
    """A byte-level BPE trained on `_corpus`, `special_tokens` kept whole (the first is id 0).

    `extra` goes to the tokenizer as is: a family's named tokens (`extra_special_tokens`) that its
    processor reads as attributes, e.g. Gemma 3's `boi_token`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    named = {"eos_token": eos_token, "pad_token": pad_token}
    if bos_token is not None:
        named["bos_token"] = bos_token
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        additional_special_tokens=[t for t in special_tokens if t != pad_token],
        padding_side="left",
        model_max_length=2048,
        **named,
        **extra,
    )


def _corpus() -> list[str]:
    # Deterministic: the same text gives the same merges, so the cached model is reproducible.
    lines = []
    n = len(_WORDS)
    for i in range(600):
        words = [_WORDS[(i * 7 + j * 13) % n] for j in range(8 + i % 5)]
        tag = _TAGS[i % len(_TAGS)]
        lines.append(f"{tag} {' '.join(words)} {i % 97} {tag}")
    lines += ["system user assistant You are a helpful assistant.", *(_TAGS * 5)]
    return lines
