"""`rewardstack merge ADAPTER --out DIR`: fold a trained LoRA adapter into its base model.

The base model is the one the run trained on: `model.id` of the resolved recipe saved beside the
adapter, else `base_model_name_or_path` of adapter_config.json. It is loaded unquantised (merging
into 4-bit weights would round the update away) in the recipe's dtype, then saved with the
processor, so the result loads with AutoModelForImageTextToText and serves with vLLM.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class MergeError(ValueError):
    """The adapter folder cannot be merged; the message says what is missing."""


def base_model_of(adapter_dir: Path) -> tuple[str, str]:
    """(base model id or path, dtype name) for an adapter folder written by `run_training`."""
    from trainer.model.loading import resolve_model_id
    from trainer.recipe import yaml_load
    from trainer.train import RESOLVED_RECIPE

    recipe_file = adapter_dir / RESOLVED_RECIPE
    if recipe_file.is_file():
        model = (yaml_load(recipe_file.read_text(encoding="utf-8")) or {}).get("model") or {}
        if model.get("id"):
            return resolve_model_id(model["id"]), model.get("dtype", "auto")
    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise MergeError(
            f"{adapter_dir}: neither {RESOLVED_RECIPE} nor adapter_config.json names the base model"
        )
    return base, "auto"


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """Merge the LoRA weights of `adapter_dir` into its base model; save model + processor."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    adapter_dir, out = Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise MergeError(f"{adapter_dir} is not a LoRA adapter folder (no adapter_config.json); "
                         "a run without LoRA already saved the full model there")
    base, dtype = base_model_of(adapter_dir)
    log.info("merging %s into %s", adapter_dir, base)
    model = AutoModelForImageTextToText.from_pretrained(
        base, dtype="auto" if dtype == "auto" else getattr(torch, dtype)
    )
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    source = str(adapter_dir) if (adapter_dir / "tokenizer_config.json").is_file() else base
    AutoProcessor.from_pretrained(source).save_pretrained(out)
    log.info("merged model saved to %s", out)
    return out
