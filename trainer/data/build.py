"""Turn a DataConfig into a `datasets.Dataset` of common rows plus a LoadSummary of what was skipped."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import datasets

from trainer.data import hub, jsonl, synthetic, vivqa_x
from trainer.data.config import DataConfig
from trainer.data.rows import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, LoadSummary, collect

# Sources whose rows carry image file paths, decoded when a row is read, not when it is loaded.
_LAZY_IMAGES = {"vivqa_x", "jsonl"}


class ResizeImages:
    """`with_transform` hook resizing lazily decoded images to W×H (a class, so it pickles)."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        batch["image"] = [
            image if image.size == self.size else image.resize(self.size) for image in batch["image"]
        ]
        return batch


def _plan(cfg: DataConfig, split: str) -> tuple[Iterable[Any], Callable[[Any], dict[str, Any]]]:
    if cfg.source == "path_vqa":
        return hub.open_records(cfg, split), partial(hub.path_vqa_row, cfg=cfg)
    if cfg.source == "mathvista":
        return hub.open_records(cfg, split), partial(hub.mathvista_row, cfg=cfg)
    if cfg.source == "vivqa_x":
        return vivqa_x.open_records(cfg), partial(vivqa_x.vivqa_x_row, cfg=cfg)
    if cfg.source == "jsonl":
        return jsonl.open_records(cfg), partial(jsonl.jsonl_row, cfg=cfg)
    return synthetic.synthetic_records(cfg), dict


def _to_dataset(rows: list[dict[str, Any]], lazy_images: bool) -> datasets.Dataset:
    optional = [c for c in OPTIONAL_COLUMNS if any(c in row for row in rows)]
    columns = {c: [row.get(c) for row in rows] for c in (*REQUIRED_COLUMNS, *optional)}
    ds = datasets.Dataset.from_dict(columns)
    # Paths become an Image column: datasets opens each file only when its row is read.
    image_feature = datasets.Image(mode="RGB")
    return ds.cast_column("image", image_feature) if lazy_images else ds


def build(cfg: DataConfig, *, split: str | None = None) -> tuple[datasets.Dataset, LoadSummary]:
    """Load, convert, skip-and-count, then assemble; raises only when no usable row remains."""
    split = split or cfg.split
    assert split is not None  # DataConfig fills the per-source default
    summary = LoadSummary(source=cfg.source, split=split)
    records, convert = _plan(cfg, split)
    rows = collect(records, convert, cfg, summary)
    summary.log()
    if not rows:
        where = cfg.path or cfg.hub_id or cfg.source
        raise ValueError(
            f"no usable rows in {where} (split {split}): {summary}. Check data.source matches the "
            "file's schema, data.image_root, and data.answer_types"
        )
    lazy = cfg.source in _LAZY_IMAGES
    ds = _to_dataset(rows, lazy)
    if cfg.shuffle:
        ds = ds.shuffle(seed=cfg.seed)
    if lazy and cfg.image_size is not None:
        ds = ds.with_transform(ResizeImages(cfg.image_size))
    return ds, summary
