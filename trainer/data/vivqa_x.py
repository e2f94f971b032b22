"""ViVQA-X: Vietnamese VQA with natural-language explanations, as JSON files beside a COCO image folder.

The released files (`ViVQA-X_{train,val,test}.json`) are a list of records:

    {"question": "...", "image_id": "393271", "image_name": "COCO_val2014_000000393271.jpg",
     "explanation": ["...", "...", "..."], "answer": "có", "question_id": "393271001",
     "question_type": "does this", "answer_type": "yes/no"}

The English VQA-X files it was translated from are a dict keyed by question id, with `answers`
(a list of `{"answer": ...}`) beside or instead of `answer`; both shapes are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trainer.data.config import DataConfig
from trainer.data.rows import BadRow, check_image_file, text_field


def open_records(cfg: DataConfig) -> Iterable[Any]:
    """The records of the JSON file (a list, `{"data": [...]}`, or a dict keyed by question id)."""
    assert cfg.path is not None  # DataConfig requires it for this source
    try:
        raw = json.loads(Path(cfg.path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"ViVQA-X annotation file not found: data.path={cfg.path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"data.path={cfg.path} is not valid JSON: {exc}") from None
    if isinstance(raw, dict) and isinstance(raw.get("data"), list):
        return raw["data"]
    if isinstance(raw, dict):
        return [{"question_id": key, **value} if isinstance(value, dict) else value
                for key, value in raw.items()]
    if isinstance(raw, list):
        return raw
    raise ValueError(f"data.path={cfg.path}: expected a JSON list of records or a dict of them")


def resolve_coco_image(root: Path, name: str) -> Path:
    """`root/name`, else `root/<train2014|val2014>/name` as named by the COCO file name itself."""
    direct = root / name
    if direct.exists():
        return direct
    parts = Path(name).name.split("_")
    if len(parts) >= 3 and parts[0] == "COCO":
        return root / parts[1] / Path(name).name
    return direct


def _explanations(record: dict[str, Any]) -> list[str]:
    value = record.get("explanation")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise BadRow("missing_explanation")
    texts = [v.strip() for v in value if isinstance(v, str) and v.strip()]
    if not texts:
        raise BadRow("missing_explanation")
    return texts


def _answers(record: dict[str, Any]) -> tuple[str, list[str]]:
    """The answer and all accepted answers; VQA-X lists ten annotator answers as dicts."""
    listed = record.get("answers")
    answers: list[str] = []
    if isinstance(listed, list):
        for entry in listed:
            text = entry.get("answer") if isinstance(entry, dict) else entry
            if isinstance(text, str) and text.strip():
                answers.append(text.strip())
    single = record.get("answer")
    if isinstance(single, str) and single.strip():
        answer = single.strip()
    elif answers:
        answer = max(set(answers), key=answers.count)
    else:
        raise BadRow("missing_answer")
    return answer, answers or [answer]


def vivqa_x_row(record: Any, cfg: DataConfig) -> dict[str, Any]:
    """One record -> a row whose image is a file path, decoded only when the row is read."""
    if not isinstance(record, dict):
        raise BadRow("not_an_object")
    question = text_field(record, "question")
    answer, answers = _answers(record)
    explanation = _explanations(record)
    name = record.get("image_name")
    if not isinstance(name, str) or not name.strip():
        raise BadRow("missing_image_name")
    assert cfg.image_root is not None  # DataConfig requires it for this source
    path = resolve_coco_image(Path(cfg.image_root), name.strip())
    check_image_file(path)
    return {
        "question": question,
        "image": str(path.resolve()),
        "solution": answer,
        "answers": answers,
        "explanation": explanation,
        "meta": {
            "question_id": str(record.get("question_id", "")),
            "image_id": str(record.get("image_id", "")),
            "question_type": record.get("question_type"),
            "answer_type": record.get("answer_type"),
            "language": "vi",
        },
    }
