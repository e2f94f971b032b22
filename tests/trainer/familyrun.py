"""Shared by the family tests: a shipped recipe pointed at a tiny model of its family, on the CPU.

Only what this machine cannot do is overridden: the model id (`tiny://<family>`), dtype and 4-bit
(CPU), steps and batch (2 steps, 2 generations), vLLM (none), the 8-bit optimizer (bitsandbytes is
CUDA only), the data (synthetic shapes instead of a hub dataset, with the recipe's own image size,
system prompt and format instruction) and the rewards (local services over HTTP; the judge needs a
paid API). The recipe's processor options, LoRA section and freeze settings are used as shipped.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainer.recipe import Recipe, load_recipe, parse_recipe

RECIPES = Path(__file__).resolve().parents[2] / "trainer" / "recipes"
FAMILY_RECIPES = {
    "smolvlm2": "smolvlm2-pathvqa.yaml",
    "gemma3": "gemma3-4b-mathvista-smoke.yaml",
    "internvl3": "internvl3-1b-vivqax.yaml",
    "qwen2.5-vl": "qwen2.5-vl-3b-think.yaml",
}


def local_rewards(urls: dict[str, str]) -> list[dict[str, Any]]:
    # fuzzy similarity to the answer varies within a group from the first step: a gradient at once
    return [
        {"name": "format", "url": urls["regex_format"], "params": {"mode": "think_answer", "partial": True},
         "send_images": False},
        {"name": "answer", "url": urls["vqa_accuracy"], "params": {"mode": "fuzzy", "threshold": 0.0},
         "send_images": False},
    ]


def family_recipe(family: str, out: Path, urls: dict[str, str], **grpo: Any) -> Recipe:
    shipped = load_recipe(RECIPES / FAMILY_RECIPES[family])
    raw = shipped.model_dump(mode="json")
    raw["model"].update(id=f"tiny://{family}", dtype="float32", load_in_4bit=False)
    data = raw["data"]
    raw["data"] = {"source": "synthetic", "limit": 4, "seed": 0, "image_size": data["image_size"],
                   "system_prompt": data["system_prompt"], "format_instruction": data["format_instruction"]}
    raw["rewards"] = local_rewards(urls)
    raw["grpo"].update(max_steps=2, per_device_train_batch_size=2, gradient_accumulation_steps=1,
                       num_generations=2, max_completion_length=8, bf16=False, logging_steps=1,
                       save_strategy="no", report_to="none", dataloader_num_workers=0, **grpo)
    if "steps_per_generation" in raw["grpo"]:
        raw["grpo"]["steps_per_generation"] = 1
    if str(raw["grpo"].get("optim", "")).endswith("8bit"):
        raw["grpo"]["optim"] = "adamw_torch"
    raw["vllm"] = {"mode": "none"}
    raw["output"] = {"dir": str(out)}
    raw["resume"] = False
    return parse_recipe(raw, source=f"{FAMILY_RECIPES[family]} (tiny://{family})")


# Where the libraries log their warnings (transformers' logger does not propagate to the root).
LIBRARY_LOGGERS = ("transformers", "trl", "peft", "accelerate")
# Library-internal warnings that our calls do not trigger, by a phrase of their text: none at the
# pinned versions. Add one only with the reason it is not ours to fix.
NOT_OURS: tuple[str, ...] = ()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def no_warnings_from_our_calls() -> Iterator[None]:
    """Fails when the block raises a Python warning or a library logs one (NOT_OURS aside).

    Recorded rather than raised: an exception in the middle of a library would change what runs.
    """
    collect = _Collect()
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).addHandler(collect)
    try:
        with warnings.catch_warnings(record=True) as raised:
            warnings.simplefilter("always")
            yield
    finally:
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).removeHandler(collect)
    found = [f"{w.category.__name__} at {w.filename}:{w.lineno}: {w.message}" for w in raised]
    found += [f"{r.name} logged: {r.getMessage()}" for r in collect.records]
    found = [f for f in dict.fromkeys(found) if not any(phrase in f for phrase in NOT_OURS)]
    assert not found, "warnings during the run:\n  " + "\n  ".join(found)
