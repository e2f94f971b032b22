"""Shared by the training tests: a tiny 3-step recipe and a callback that snapshots weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from trainer.recipe import Recipe, parse_recipe


def tiny_recipe(out: Path, rewards: list[dict[str, Any]], **grpo: Any) -> Recipe:
    return parse_recipe({
        "model": {"id": "tiny://qwen2.5-vl", "dtype": "float32"},
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"],
                 "language_only": True},
        "data": {"source": "synthetic", "limit": 8, "image_size": 56,
                 "format_instruction": "Answer in <answer></answer>."},
        "rewards": rewards,
        "grpo": {"per_device_train_batch_size": 4, "num_generations": 4, "max_completion_length": 4,
                 "learning_rate": 1e-2, "max_steps": 3, "logging_steps": 1, "save_steps": 3,
                 "report_to": "none", "seed": 0, "bf16": False, **grpo},
        "output": {"dir": str(out)},
    })


class Snapshot(TrainerCallback):
    """The trainable parameters at the start and at the end of training."""

    def __init__(self) -> None:
        self.before: dict[str, torch.Tensor] = {}
        self.after: dict[str, torch.Tensor] = {}
        self.frozen: dict[str, torch.Tensor] = {}

    @staticmethod
    def _grab(model, trainable: bool) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad is trainable}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = self._grab(model, True)
        self.frozen = self._grab(model, False)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.after = self._grab(model, True)
        frozen_now = self._grab(model, False)
        self.frozen_changed = [n for n, t in self.frozen.items() if not torch.equal(t, frozen_now[n])]
