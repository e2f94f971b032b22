"""The token-budget preflight: prompt + image tokens of the longest rows plus the completion must fit.

Run by `train` and `eval` before any weight is loaded. A sample of rows (evenly spread, at most
SAMPLE_ROWS) goes through the recipe's processor exactly as TRL and generation send it; the longest
prompt plus the completion length must fit the model's context (`max_position_embeddings`) and,
when vLLM generates, `vllm.max_model_length`. vLLM builds its own processor from the checkpoint's
defaults (it does not see the recipe's `processor:` options), so its side is measured with those.
Over budget is a TokenBudgetError naming the recipe fields that change the numbers.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from trainer.recipe import Recipe

log = logging.getLogger(__name__)

SAMPLE_ROWS = 16


class TokenBudgetError(ValueError):
    """The longest prompt plus the completion does not fit the context; names the fields to change."""


@dataclasses.dataclass(frozen=True)
class PromptTokens:
    total: int
    image: int


def completion_length(recipe: Recipe) -> int:
    """`grpo.max_completion_length`, or GRPOConfig's default when the recipe leaves it out."""
    from trl import GRPOConfig

    default = next(f.default for f in dataclasses.fields(GRPOConfig) if f.name == "max_completion_length")
    return int(recipe.grpo.get("max_completion_length", default))


def check_token_budget(recipe: Recipe, rows: Any, *, max_new_tokens: int, use_vllm: bool) -> PromptTokens:
    """The longest sampled prompt; raises TokenBudgetError when it plus `max_new_tokens` overflows."""
    from transformers import AutoConfig

    from trainer.model.loading import load_processor, resolve_model_id

    model_id = resolve_model_id(recipe.model.id)
    config = AutoConfig.from_pretrained(model_id, trust_remote_code=recipe.model.trust_remote_code)
    image_token = getattr(config, "image_token_id", None) or getattr(config, "image_token_index", None)
    context = int(config.get_text_config().max_position_embeddings)
    sample = _sample(rows)
    processor = load_processor(recipe.model, options=recipe.processor)
    worst = longest_prompt(processor, sample, image_token)
    fields = _fields_to_change(processor)
    _check(worst, max_new_tokens, context, "the model's context (max_position_embeddings)", fields)
    if use_vllm:
        limit = min(context, recipe.vllm.max_model_length or context)
        name = "vllm.max_model_length" if recipe.vllm.max_model_length else "the model's context"
        seen = worst
        if recipe.processor.options():
            seen = longest_prompt(load_processor(recipe.model), sample, image_token)
        _check(seen, max_new_tokens, limit, f"{name} (vLLM, with the checkpoint's own processor)", fields)
    log.info("token budget: longest sampled prompt %d tokens (%d image) + %d completion, context %d",
             worst.total, worst.image, max_new_tokens, context)
    return worst


def longest_prompt(processor: Any, rows: Sequence[dict[str, Any]], image_token: int | None) -> PromptTokens:
    from trainer.generation import conversation
    from trainer.model.loading import chat_processor_kwargs

    worst = PromptTokens(0, 0)
    for row in rows:
        ids = processor.apply_chat_template(conversation(row), add_generation_prompt=True, tokenize=True,
                                            return_dict=True, return_tensors="pt",
                                            processor_kwargs=chat_processor_kwargs(processor))["input_ids"]
        image = int((ids == image_token).sum()) if image_token is not None else 0
        if ids.shape[-1] > worst.total:
            worst = PromptTokens(int(ids.shape[-1]), image)
    return worst


def _sample(rows: Any) -> list[dict[str, Any]]:
    n = len(rows)
    step = max(1, n // SAMPLE_ROWS)
    return [rows[i] for i in range(0, n, step)][:SAMPLE_ROWS]


def _check(worst: PromptTokens, completion: int, limit: int, name: str, fields: str) -> None:
    need = worst.total + completion
    if need > limit:
        raise TokenBudgetError(
            f"token budget: the longest sampled prompt is {worst.total} tokens ({worst.image} of them "
            f"image tokens) + grpo.max_completion_length {completion} = {need}, over {name} = {limit}; "
            f"lower {fields}data.image_size or grpo.max_completion_length, or raise vllm.max_model_length"
        )


def _fields_to_change(processor: Any) -> str:
    """The `processor:` options this model's image processor has, as a list to put in the message."""
    image_processor = getattr(processor, "image_processor", None)
    size = getattr(image_processor, "size", None)
    keys = set()
    if size is not None:
        items = size.items() if isinstance(size, dict) else vars(size).items()
        keys = {k for k, v in items if v is not None}
    if hasattr(image_processor, "do_image_splitting"):
        names = ["processor.longest_edge", "processor.do_image_splitting"]
    elif "longest_edge" in keys and "shortest_edge" in keys:
        names = ["processor.max_pixels"]
    elif hasattr(image_processor, "max_patches"):
        names = ["processor.max_patches"]
    else:
        names = []
    return "".join(f"{n}, " for n in names)
