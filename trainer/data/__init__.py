"""Datasets for GRPO: every source becomes the same rows (conversational prompt, image, solution, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trainer.data.config import DataConfig

if TYPE_CHECKING:
    import datasets

    from trainer.data.rows import LoadSummary

__all__ = ["DataConfig", "build_dataset"]


def build_dataset(
    cfg: DataConfig, *, split: str | None = None
) -> tuple[datasets.Dataset, LoadSummary]:
    """Load `cfg.source` into the common row schema; malformed rows are skipped and counted.

    `split` overrides `cfg.split` (evaluation passes `cfg.eval_split`). Importing `datasets` waits
    until here so that validating a recipe stays cheap.
    """
    from trainer.data.build import build

    return build(cfg, split=split)
