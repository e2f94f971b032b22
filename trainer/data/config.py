"""The `data:` section of a recipe: which dataset to load, how much of it, and how to prompt with it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Source = Literal["path_vqa", "mathvista", "vivqa_x", "jsonl", "synthetic"]

# Hub datasets each source reads when no local `path` is given.
DEFAULT_HUB_IDS: dict[str, str] = {
    "path_vqa": "flaviagiammarino/path-vqa",
    "mathvista": "AI4Math/MathVista",
}
# MathVista's labelled split is `testmini`; `test` has no public answers.
DEFAULT_SPLITS: dict[str, str] = {"mathvista": "testmini"}


class DataConfig(BaseModel):
    """Where the prompts come from.

    Parameters that choose the data:
        source: `path_vqa` | `mathvista` (hub datasets, or a local copy in their schema via `path`),
            `vivqa_x` (ViVQA-X JSON + a COCO image folder), `jsonl` (VLM-R1 `conversations` or plain
            `{image, question, answer}` lines), `synthetic` (shapes drawn on the spot; the CPU demo).
        hub_id: dataset id on the hub; defaults per source (`flaviagiammarino/path-vqa`,
            `AI4Math/MathVista`). A local dataset directory is accepted here too.
        path: local replacement for the hub: a dataset directory or a parquet/json/jsonl file for the
            hub sources; the JSON file (ViVQA-X) or JSONL file (jsonl) otherwise.
        image_root: folder that relative image paths resolve under (ViVQA-X: the COCO folder; jsonl:
            defaults to the JSONL file's folder).
        split: dataset split; `train` by default, `testmini` for MathVista.
        eval_split: split `rewardstack eval` reads from a hub source; defaults to `split`.
        eval_path: annotation file `rewardstack eval` reads for `vivqa_x` / `jsonl`; defaults to `path`.
        streaming: stream from the hub instead of downloading the whole split (with `limit`).
        limit: keep the first N usable rows (for `synthetic`: how many to draw, 64 by default).
        answer_types: keep only rows whose `meta.answer_type` is listed (MathVista: integer, float,
            text, list; ViVQA-X: yes/no, number, other); the rest are counted as filtered.

    Parameters that shape the rows:
        image_size: resize every image to W×H RGB; one integer means a square. None keeps the size.
        system_prompt: the system turn of every prompt; None leaves it out.
        format_instruction: appended to the question in the user turn (e.g. the tag format to use).
        seed: seed of the synthetic generator and of `shuffle`.
        shuffle: shuffle rows (with `seed`) after loading.
    """

    model_config = ConfigDict(extra="forbid")

    source: Source
    hub_id: str | None = None
    path: Path | None = None
    image_root: Path | None = None
    split: str | None = None
    eval_split: str | None = None
    eval_path: Path | None = None
    streaming: bool = False
    limit: int | None = Field(default=None, ge=1)
    answer_types: list[str] | None = None
    image_size: tuple[int, int] | None = None
    system_prompt: str | None = None
    format_instruction: str | None = None
    seed: int = 0
    shuffle: bool = False

    @field_validator("image_size", mode="before")
    @classmethod
    def _square_from_int(cls, value: object) -> object:
        return (value, value) if isinstance(value, int) else value

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and min(value) < 1:
            raise ValueError(f"image_size must be positive (W, H), got {value}")
        return value

    @model_validator(mode="after")
    def _fill_defaults_and_check(self) -> DataConfig:
        if self.source in DEFAULT_HUB_IDS and self.hub_id is None and self.path is None:
            self.hub_id = DEFAULT_HUB_IDS[self.source]
        if self.split is None:
            self.split = DEFAULT_SPLITS.get(self.source, "train")
        if self.source in ("vivqa_x", "jsonl") and self.path is None:
            raise ValueError(f"data.source={self.source} needs data.path (the annotation file)")
        if self.source == "vivqa_x" and self.image_root is None:
            raise ValueError("data.source=vivqa_x needs data.image_root (the COCO image folder)")
        if self.streaming and self.source not in DEFAULT_HUB_IDS:
            raise ValueError(
                f"data.streaming applies to hub sources {sorted(DEFAULT_HUB_IDS)}, "
                f"not {self.source}; remove it"
            )
        return self
