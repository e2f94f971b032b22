"""Hub sources (Path-VQA, MathVista) read with `datasets.load_dataset`, or a local copy in their schema."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image

from trainer.data.config import DataConfig
from trainer.data.rows import BadRow, open_image, text_field

# A file given as `path` is read by the packaged builder for its extension.
_BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv"}
_IMAGE_COLUMNS = ("image", "decoded_image")


def open_records(cfg: DataConfig, split: str) -> Iterable[dict[str, Any]]:
    """Records of `split`, streamed or not, with image columns left undecoded.

    Images are decoded per row by the converters, so one corrupt image is one skipped row
    instead of an exception that ends the iteration.
    """
    import datasets

    if cfg.path is not None and Path(cfg.path).is_file():
        builder = _BUILDERS.get(Path(cfg.path).suffix.lower())
        if builder is None:
            raise ValueError(
                f"data.path {cfg.path} has no known dataset extension; use one of {sorted(_BUILDERS)} "
                "or a dataset directory"
            )
        ds = datasets.load_dataset(
            builder, data_files={split: str(cfg.path)}, split=split, streaming=cfg.streaming
        )
    else:
        ref = str(cfg.path) if cfg.path is not None else cfg.hub_id
        ds = datasets.load_dataset(ref, split=split, streaming=cfg.streaming)
    features = ds.features or {}
    for column in _IMAGE_COLUMNS:
        if isinstance(features.get(column), datasets.Image):
            ds = ds.cast_column(column, datasets.Image(decode=False))
    return ds


def _image(value: Any, size: tuple[int, int] | None) -> Image.Image:
    """An undecoded `{"bytes", "path"}` cell (or a PIL image from an untyped source) as RGB."""
    if isinstance(value, Image.Image):
        image = value.convert("RGB")
        return image.resize(size) if size is not None and image.size != size else image
    if isinstance(value, dict) and value.get("bytes"):
        return open_image(value["bytes"], size)
    if isinstance(value, dict) and value.get("path"):
        return open_image(value["path"], size)
    raise BadRow("missing_image")


def path_vqa_row(record: dict[str, Any], cfg: DataConfig) -> dict[str, Any]:
    """Path-VQA: `image`, `question`, `answer` (yes/no or a short pathology phrase)."""
    question = text_field(record, "question")
    answer = text_field(record, "answer")
    return {"question": question, "image": _image(record.get("image"), cfg.image_size),
            "solution": answer}


def mathvista_row(record: dict[str, Any], cfg: DataConfig) -> dict[str, Any]:
    """MathVista: `decoded_image`, `question`, `answer`, `choices`, `question_type`, ...

    A multiple-choice answer is the text of one choice; the choices are shown in the prompt and
    sent to the scorer so that "B" and the choice text can both be judged.
    """
    question = text_field(record, "question")
    answer = text_field(record, "answer")
    question_type = record.get("question_type") or "free_form"
    choices = record.get("choices")
    if question_type == "multi_choice" and not (
        isinstance(choices, list) and choices and all(isinstance(c, str) for c in choices)
    ):
        raise BadRow("missing_choices")
    choices = [c.strip() for c in choices] if question_type == "multi_choice" else None
    precision = record.get("precision")
    meta = {
        "pid": str(record.get("pid", "")),
        "question_type": question_type,
        "answer_type": record.get("answer_type"),
        "precision": float(precision) if isinstance(precision, int | float) else None,
        "unit": record.get("unit") or None,
    }
    user_text = question
    if choices:
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        user_text += "\nChoices:\n" + "\n".join(f"({letters[i]}) {c}" for i, c in enumerate(choices))
    return {
        "question": question,
        "user_text": user_text,
        "image": _image(record.get("decoded_image"), cfg.image_size),
        "solution": answer,
        "choices": choices,
        "meta": meta,
    }
