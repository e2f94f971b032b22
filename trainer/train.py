"""`rewardstack train`: a recipe -> dataset, model, reward functions over HTTP -> TRL GRPOTrainer.

Outputs under `output.dir`: checkpoint-N/ (TRL's), adapter/ (the LoRA adapter; model/ instead when
the recipe trains every weight), each with the processor and resolved_recipe.yaml beside it,
resolved_recipe.yaml, metrics.jsonl and rewards.png.

`resume` is honoured exactly: `false` starts fresh (and says so if checkpoints are already there),
`auto` resumes from the latest checkpoint in `output.dir` or logs that there is none and starts
fresh, and a path must be a checkpoint directory or the run stops before loading anything.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainer.recipe import Recipe

log = logging.getLogger(__name__)

RESOLVED_RECIPE = "resolved_recipe.yaml"
ADAPTER_DIR = "adapter"
FULL_MODEL_DIR = "model"


class ResumeError(ValueError):
    """`resume:` names a checkpoint that is not there."""


def resolve_resume(resume: bool | str | Path, output_dir: Path) -> str | None:
    """The checkpoint to resume from, or None to start fresh; never a silent guess."""
    from transformers.trainer_utils import get_last_checkpoint

    existing = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if resume is False:
        if existing:
            log.warning("resume: false, so starting fresh although %s holds %s; set resume: auto "
                        "to continue from it", output_dir, Path(existing).name)
        return None
    if resume == "auto":
        if existing is None:
            log.info("resume: auto found no checkpoint in %s; starting fresh", output_dir)
            return None
        log.info("resume: auto, resuming from %s", existing)
        return existing
    path = Path(resume)
    if not (path / "trainer_state.json").is_file():
        raise ResumeError(f"resume: {path} is not a checkpoint directory (no trainer_state.json); "
                          "give a checkpoint-N folder, 'auto', or false")
    log.info("resuming from %s", path)
    return str(path)


def build_trainer(recipe: Recipe, rewards, *, callbacks: Sequence[Any] = (), dataset=None, model=None):
    """The GRPOTrainer a recipe describes, with the reward guard and feedback callbacks.

    `model` replaces the recipe's model: a benchmark's random-weight model at a real checkpoint's
    size is built in memory, not written to disk and read back.
    """
    import torch
    from trl import GRPOConfig, GRPOTrainer

    from trainer.data import build_dataset
    from trainer.feedback.callbacks import feedback_callbacks
    from trainer.model.loading import (
        load_model,
        load_processor,
        lora_config,
        lora_placement,
        trl_chat_template_kwargs,
    )

    if dataset is None:
        dataset, _summary = build_dataset(recipe.data)
    kwargs = recipe.grpo_kwargs()
    if not torch.cuda.is_available():
        kwargs.setdefault("dataloader_pin_memory", False)  # pinning needs an accelerator
    # The arguments come before the model: under `accelerate launch` with DeepSpeed ZeRO-3, creating
    # them registers the DeepSpeed config, and only then does from_pretrained shard the weights as it
    # loads them (zero3_init_flag) instead of materialising the whole model in every process.
    args = GRPOConfig(**kwargs)
    if model is None:
        model = load_model(recipe.model)
    processor = load_processor(recipe.model, options=recipe.processor)
    args.chat_template_kwargs = trl_chat_template_kwargs(processor, args.chat_template_kwargs)
    feedback = feedback_callbacks(recipe.output.dir)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards.functions,
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=lora_config(recipe.lora),
        callbacks=[rewards.callback(), *feedback.callbacks, *callbacks],
    )
    if recipe.lora_enabled:
        placed = lora_placement(trainer.model)
        log.info("LoRA adapters on %d language-model modules and %d vision modules",
                 placed["language"], placed["vision"])
    feedback.attach(trainer)
    return trainer, processor


def run_training(recipe: Recipe, *, callbacks: Sequence[Any] = (), dataset=None) -> Path:
    """Train as the recipe says; return the output directory (`adapter/`, or `model/` without LoRA)."""
    from trainer.preflight import preflight
    from trainer.preflight_tokens import check_token_budget, completion_length
    from trainer.rewards import RewardSet

    out = Path(recipe.output.dir)
    checkpoint = resolve_resume(recipe.resume, out)
    # A recipe that would fail at step 1 (params, data, a service that does not answer) fails here,
    # before the model loads: the one contact with each service before training.
    dataset = preflight(recipe, dataset)
    rewards = RewardSet(recipe.rewards)
    check_token_budget(recipe, dataset, max_new_tokens=completion_length(recipe),
                       use_vllm=recipe.vllm.mode != "none")
    out.mkdir(parents=True, exist_ok=True)
    (out / RESOLVED_RECIPE).write_text(recipe.to_yaml(), encoding="utf-8")
    trainer, processor = build_trainer(recipe, rewards, callbacks=callbacks, dataset=dataset)
    try:
        # TRL runs async reward functions on its own loop thread (GRPOTrainer.async_loop).
        rewards.start_on(getattr(trainer, "async_loop", None))
        trainer.train(resume_from_checkpoint=checkpoint)
        rewards.raise_if_aborted()
    finally:
        rewards.close()
    save_outputs(trainer, processor, recipe, out / (ADAPTER_DIR if recipe.lora_enabled else FULL_MODEL_DIR))
    return out


def save_outputs(trainer, processor, recipe: Recipe, target: Path) -> Path:
    """The adapter (or full model), the processor and the resolved recipe, in one folder."""
    trainer.save_model(str(target))
    if trainer.accelerator.is_main_process:
        processor.save_pretrained(str(target))
        (target / RESOLVED_RECIPE).write_text(recipe.to_yaml(), encoding="utf-8")
    log.info("saved %s to %s", "adapter" if recipe.lora_enabled else "model", target)
    return target
