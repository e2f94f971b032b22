"""Load the policy model and its processor from the recipe's `model:`, `processor:` and `lora:` sections.

AutoModelForImageTextToText + AutoProcessor (left padding, as generation needs), with the dtype,
attention implementation, 4-bit loading (bitsandbytes, CUDA only), frozen vision tower, and the
LoRA config handed to TRL, which wraps the model itself (it then handles gradient checkpointing
with PEFT and uses the adapter-disabled model as the reference).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from trainer.recipe import LoraSection, ModelSection, ProcessorSection

log = logging.getLogger(__name__)

TINY_SCHEME = "tiny://"
# Attribute names under which transformers' VLMs keep their vision encoder (Qwen2/2.5-VL,
# Gemma 3 / LLaVA / InternVL, Idefics3 / SmolVLM).
VISION_ATTRS = ("visual", "vision_tower", "vision_model")
# Module-name pattern of everything on the vision side, for LoRA's exclude_modules.
VISION_MODULES = r".*(visual|vision_tower|vision_model|multi_modal_projector|mlp1|connector).*"


class ModelLoadError(RuntimeError):
    """The model cannot be loaded as the recipe asks; the message says which setting to change."""


def resolve_model_id(model_id: str) -> str:
    """`tiny://<family>` is a locally built tiny model; anything else is a hub id or a path."""
    if model_id.startswith(TINY_SCHEME):
        from trainer.model.tiny import FAMILIES, tiny_model_dir

        family = model_id[len(TINY_SCHEME):]
        if family not in FAMILIES:
            choices = ", ".join(TINY_SCHEME + f for f in FAMILIES)
            raise ModelLoadError(f"model.id {model_id!r}: the tiny models are {choices}")
        return str(tiny_model_dir(family=family))
    return model_id


def load_processor(section: ModelSection, model_id: str | None = None,
                   options: ProcessorSection | None = None):
    """The processor, left-padded, with the recipe's `processor:` options set on its image processor."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(
        model_id or resolve_model_id(section.id),
        padding_side="left",
        trust_remote_code=section.trust_remote_code,
    )
    tokenizer = getattr(processor, "tokenizer", processor)
    tokenizer.padding_side = "left"  # generation appends on the right, so prompts align there
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if options is not None:
        apply_processor_options(processor, options)
    return processor


# Processors whose apply_chat_template puts their video defaults (num_frames, fps) into **kwargs
# when a call names no processor_kwargs; transformers 5.20 then warns on every call that processor
# options belong in processor_kwargs. SmolVLM2's does (one warning per prompt batch, every step).
_VIDEO_DEFAULTS_IN_KWARGS = ("SmolVLMProcessor",)


def chat_processor_kwargs(processor: Any, **options: Any) -> dict[str, Any]:
    """`processor_kwargs` for `processor.apply_chat_template`, as transformers 5.20 wants them.

    `options` (padding, ...) plus, for the processors above, the very video defaults they would
    have added themselves, so that no option travels in **kwargs.
    """
    kwargs = dict(options)
    video = getattr(processor, "video_processor", None)
    if type(processor).__name__ in _VIDEO_DEFAULTS_IN_KWARGS and video is not None:
        kwargs = {"num_frames": video.num_frames, "fps": video.fps, **kwargs}
    return kwargs


def trl_chat_template_kwargs(processor: Any, given: dict[str, Any] | None) -> dict[str, Any]:
    """GRPOConfig.chat_template_kwargs with `processor_kwargs` filled in (TRL passes them to every
    apply_chat_template call it makes); the recipe's own values win."""
    given = dict(given or {})
    ours = chat_processor_kwargs(processor, **given.pop("processor_kwargs", {}))
    return {**given, "processor_kwargs": ours} if ours else given


def apply_processor_options(processor, options: ProcessorSection) -> None:
    """Set each option where the image processor reads it; one it has no use for is an error.

    Attributes, not call arguments: TRL calls the processor itself, with no room for extra kwargs.
    """
    image_processor = getattr(processor, "image_processor", None)
    for name, value in options.options().items():
        size = getattr(image_processor, "size", None)
        if name in ("min_pixels", "max_pixels") and size is not None and "longest_edge" in _keys(size):
            # transformers 5 keeps Qwen2-VL's pixel range in `size` (shortest/longest edge, in pixels)
            key = "shortest_edge" if name == "min_pixels" else "longest_edge"
            image_processor.size = {**_present(size), key: value}
        elif name == "longest_edge" and size is not None and "longest_edge" in _keys(size) \
                and hasattr(image_processor, "do_image_splitting"):
            image_processor.size = {"longest_edge": value}
        elif name in ("do_image_splitting", "max_patches") and hasattr(image_processor, name):
            setattr(image_processor, name, value)
        else:
            kind = type(image_processor).__name__
            raise ModelLoadError(f"processor.{name} does not apply to {kind}; remove it from the "
                                 "recipe's processor: section")
    if options.options():
        log.info("processor options: %s", options.options())


def _keys(size) -> set[str]:
    return set(_present(size))


def _present(size) -> dict[str, Any]:
    items = size.items() if isinstance(size, dict) else vars(size).items()
    return {k: v for k, v in items if v is not None}


def load_model(section: ModelSection):
    """The model, ready for TRL: dtype, attention, optional 4-bit, vision frozen if asked."""
    from transformers import AutoModelForImageTextToText

    model_id = resolve_model_id(section.id)
    _fix_known_bugs(model_id, section.trust_remote_code)
    kwargs: dict[str, Any] = {"trust_remote_code": section.trust_remote_code}
    kwargs["dtype"] = _torch_dtype(section.dtype)
    if section.attn_implementation:
        kwargs["attn_implementation"] = section.attn_implementation
    if section.load_in_4bit:
        kwargs.update(_four_bit_kwargs(kwargs["dtype"]))
    model = AutoModelForImageTextToText.from_pretrained(model_id, **kwargs)
    if section.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=section.gradient_checkpointing
        )
    if section.gradient_checkpointing:
        model.config.use_cache = False  # the cache is useless when activations are recomputed
    if section.freeze_vision:
        freeze_vision_tower(model)
    return model


def _fix_known_bugs(model_id: str, trust_remote_code: bool) -> None:
    from transformers import AutoConfig

    if AutoConfig.from_pretrained(model_id, trust_remote_code=trust_remote_code).model_type == "smolvlm":
        from trainer.model import smolvlm_fix

        smolvlm_fix.apply()


def lora_placement(model) -> dict[str, int]:
    """How many modules carry a LoRA adapter, in the language model and on the vision side."""
    import re

    vision = re.compile(VISION_MODULES)
    names = {n.rsplit(".lora_A", 1)[0] for n, _ in model.named_parameters() if ".lora_A." in n}
    on_vision = sum(1 for n in names if vision.fullmatch(n))
    return {"language": len(names) - on_vision, "vision": on_vision}


def freeze_vision_tower(model) -> int:
    """Stop gradients into the vision encoder; returns how many parameters were frozen."""
    tower = vision_tower(model)
    if tower is None:
        raise ModelLoadError(
            f"model.freeze_vision: no vision tower found on {type(model).__name__} "
            f"(looked for {', '.join(VISION_ATTRS)}); set model.freeze_vision=false"
        )
    frozen = 0
    for p in tower.parameters():
        p.requires_grad_(False)
        frozen += p.numel()
    log.info("froze %d vision parameters", frozen)
    return frozen


def vision_tower(model):
    for owner in (model, getattr(model, "model", None)):
        for attr in VISION_ATTRS:
            tower = getattr(owner, attr, None) if owner is not None else None
            if tower is not None:
                return tower
    return None


def lora_config(section: LoraSection | None):
    """The peft LoraConfig for TRL's `peft_config`, or None for full fine-tuning."""
    if section is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=section.r,
        lora_alpha=section.alpha,
        lora_dropout=section.dropout,
        target_modules=section.target_modules,
        exclude_modules=VISION_MODULES if section.language_only else None,
        task_type="CAUSAL_LM",
    )


def _torch_dtype(name: str):
    import torch

    return "auto" if name == "auto" else getattr(torch, name)


def _four_bit_kwargs(dtype) -> dict[str, Any]:
    import torch
    from transformers import BitsAndBytesConfig

    if not torch.cuda.is_available():
        raise ModelLoadError(
            "model.load_in_4bit needs a CUDA GPU (bitsandbytes quantises on the GPU); "
            "set model.load_in_4bit=false to train unquantised on this machine"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelLoadError(
            "model.load_in_4bit needs the bitsandbytes package: pip install bitsandbytes"
        )
    compute = torch.bfloat16 if dtype in ("auto", None) else dtype
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
        bnb_4bit_quant_storage=compute,
    )
    from accelerate import PartialState

    return {"quantization_config": quant, "device_map": {"": PartialState().local_process_index}}
