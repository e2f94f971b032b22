"""Tiny random-initialised SmolVLM2, Gemma 3 and InternVL3, each at its real checkpoint's image geometry.

The language model and the vision tower's depth and width are toy-sized; everything that decides
how an image becomes tokens is the real checkpoint's, so the processor emits the same number of
image tokens and the model's merge code runs on the same shapes:

SmolVLM2 (HuggingFaceTB/SmolVLM2-2.2B-Instruct)
    384-px tiles, patch 14, pixel-shuffle scale 3 -> 81 tokens per tile; longest edge resized to
    1536 and split into a grid of tiles plus one global tile; `<image>` inside
    `<fake_token_around_image>`, `<row_i_col_j>` / `<global-img>` markers; the SmolVLM template.
Gemma 3 (google/gemma-3-4b-it)
    SigLIP at 896×896, patch 14 (64×64 patches) average-pooled to 256 `<image_soft_token>`s between
    `<start_of_image>` and `<end_of_image>`; pan-and-scan off; the Gemma 3 template.
InternVL3 (OpenGVLab/InternVL3-1B-hf)
    448-px tiles, patch 14, pixel-shuffle downsample 0.5 -> 256 `<IMG_CONTEXT>` tokens per tile
    between `<img>` and `</img>`; a Qwen2 language model; the ChatML template transformers'
    conversion script writes.

Chat templates are TRL's copies of the checkpoints' own (`trl.chat_template_utils`) or, for
InternVL, the one in transformers' `convert_internvl_weights_to_hf.py`.
"""

from __future__ import annotations

from pathlib import Path

from trainer.model.tiny_common import LM_HEAD_STD, bpe_tokenizer

# Toy sizes shared by every family's language model and vision tower.
_TEXT = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096}
_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}

SMOLVLM_ROW_COL = [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
SMOLVLM_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<end_of_utterance>",
                   "<fake_token_around_image>", "<image>", "<global-img>", "<video>", *SMOLVLM_ROW_COL]
GEMMA3_SPECIAL = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>",
                  "<start_of_image>", "<end_of_image>", "<image_soft_token>"]
INTERNVL_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>",
                    "<IMG_CONTEXT>", "<video>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>"]
INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}{{ '<IMG_CONTEXT>\n' }}"
    "{% elif content['type'] == 'video' %}{{ '<video>\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{'<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\n' }}{% endif %}"
)


def build_smolvlm2(out: Path, seed: int = 0) -> None:
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )
    from trl.chat_template_utils import smolvlm_chat_template

    tok = bpe_tokenizer(SMOLVLM_SPECIAL, bos_token="<|im_start|>", eos_token="<end_of_utterance>",
                        pad_token="<|im_end|>")
    ids = tok.convert_tokens_to_ids
    config = SmolVLMConfig(
        text_config={"model_type": "llama", "vocab_size": len(tok), **_TEXT, "head_dim": 16,
                     "bos_token_id": ids("<|im_start|>"), "eos_token_id": ids("<end_of_utterance>"),
                     "pad_token_id": ids("<|im_end|>")},
        vision_config={**_VISION, "image_size": 384, "patch_size": 14},
        scale_factor=3, image_token_id=ids("<image>"), tie_word_embeddings=False,
    )
    image_processor = SmolVLMImageProcessor(
        do_image_splitting=True, size={"longest_edge": 4 * 384}, max_image_size={"longest_edge": 384},
    )
    processor = SmolVLMProcessor(image_processor=image_processor, tokenizer=tok,
                                 video_processor=SmolVLMVideoProcessor(), image_seq_len=81,
                                 chat_template=smolvlm_chat_template)
    _save(SmolVLMForConditionalGeneration(_seeded(config, seed)), processor, config.text_config, out)


def build_gemma3(out: Path, seed: int = 0) -> None:
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
    )
    from trl.chat_template_utils import gemma3_chat_template

    tok = bpe_tokenizer(GEMMA3_SPECIAL, bos_token="<bos>", eos_token="<end_of_turn>", pad_token="<pad>",
                        extra_special_tokens={"boi_token": "<start_of_image>",
                                              "eoi_token": "<end_of_image>",
                                              "image_token": "<image_soft_token>"})
    ids = tok.convert_tokens_to_ids
    config = Gemma3Config(
        text_config={**_TEXT, "vocab_size": len(tok), "head_dim": 16, "sliding_window": 512,
                     "bos_token_id": ids("<bos>"), "eos_token_id": ids("<end_of_turn>"),
                     "pad_token_id": ids("<pad>")},
        vision_config={**_VISION, "model_type": "siglip_vision_model", "image_size": 896, "patch_size": 14},
        mm_tokens_per_image=256, boi_token_index=ids("<start_of_image>"),
        eoi_token_index=ids("<end_of_image>"), image_token_index=ids("<image_soft_token>"),
    )
    image_processor = Gemma3ImageProcessor(size={"height": 896, "width": 896}, do_pan_and_scan=False,
                                           image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = Gemma3Processor(image_processor=image_processor, tokenizer=tok, image_seq_length=256,
                                chat_template=gemma3_chat_template)
    _save(Gemma3ForConditionalGeneration(_seeded(config, seed)), processor, config.text_config, out)


def build_internvl3(out: Path, seed: int = 0) -> None:
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
    )

    tok = bpe_tokenizer(INTERNVL_SPECIAL, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                        extra_special_tokens={"start_image_token": "<img>", "end_image_token": "</img>",
                                              "context_image_token": "<IMG_CONTEXT>",
                                              "video_token": "<video>"})
    ids = tok.convert_tokens_to_ids
    config = InternVLConfig(
        text_config={"model_type": "qwen2", **_TEXT, "vocab_size": len(tok),
                     "bos_token_id": ids("<|endoftext|>"), "eos_token_id": ids("<|im_end|>"),
                     "pad_token_id": ids("<|endoftext|>")},
        vision_config={**_VISION, "image_size": [448, 448], "patch_size": [14, 14],
                       "use_absolute_position_embeddings": True},
        downsample_ratio=0.5, image_token_id=ids("<IMG_CONTEXT>"), tie_word_embeddings=False,
    )
    image_processor = GotOcr2ImageProcessor(size={"height": 448, "width": 448}, crop_to_patches=False,
                                            min_patches=1, max_patches=12,
                                            image_mean=[0.485, 0.456, 0.406],
                                            image_std=[0.229, 0.224, 0.225])
    processor = InternVLProcessor(image_processor=image_processor, tokenizer=tok,
                                  video_processor=InternVLVideoProcessor(), image_seq_length=256,
                                  chat_template=INTERNVL_CHAT_TEMPLATE)
    _save(InternVLForConditionalGeneration(_seeded(config, seed)), processor, config.text_config, out)


def _seeded(config, seed: int):
    import torch

    torch.manual_seed(seed)
    return config


def _save(model, processor, text_config, out: Path) -> None:
    import torch

    head = model.get_output_embeddings()
    if head is not None and head.weight is not model.get_input_embeddings().weight:
        with torch.no_grad():  # as in trainer.model.tiny: a peaked head, so LoRA can move the distribution
            head.weight.normal_(0.0, LM_HEAD_STD)
    for name in ("eos_token_id", "pad_token_id", "bos_token_id"):
        setattr(model.generation_config, name, getattr(text_config, name))
    model.save_pretrained(out)
    processor.save_pretrained(out)


BUILDERS = {"smolvlm2": build_smolvlm2, "gemma3": build_gemma3, "internvl3": build_internvl3}
