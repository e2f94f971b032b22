"""Generic JSONL: VLM-R1's `conversations` lines and plain `{image, question, answer}` lines.

VLM-R1 (om-ai-lab/VLM-R1, `grpo_jsonl.py`):

    {"id": 1, "image": "images/a.png",
     "conversations": [{"from": "human", "value": "<image>What number of balls are there?"},
                       {"from": "gpt", "value": "3"}]}

Plain: `{"image": "images/a.png", "question": "...", "answer": "..."}`, optionally with `answers`,
`choices`, `explanation` (a string or a list) and `meta` (an object). Image paths are relative to
`data.image_root`, or to the JSONL file's folder when that is not set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainer.data.config import DataConfig
from trainer.data.rows import BadRow, check_image_file, text_field

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_HUMAN = ("human", "user")
_GPT = ("gpt", "assistant")


def open_records(cfg: DataConfig) -> Iterator[str]:
    """Non-blank lines of the file; parsing happens per line so a broken line is one skipped row."""
    assert cfg.path is not None  # DataConfig requires it for this source
    if not Path(cfg.path).is_file():
        raise FileNotFoundError(f"JSONL file not found: data.path={cfg.path}")
    with open(cfg.path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield line


def _turn(conversations: list[Any], speakers: tuple[str, ...]) -> str | None:
    for turn in conversations:
        if isinstance(turn, dict) and turn.get("from") in speakers:
            value = turn.get("value")
            return value if isinstance(value, str) else None
    return None


def _from_conversations(record: dict[str, Any]) -> tuple[str, str]:
    conversations = record["conversations"]
    if not isinstance(conversations, list):
        raise BadRow("bad_conversations")
    question = (_turn(conversations, _HUMAN) or "").replace("<image>", "").strip()
    answer = (_turn(conversations, _GPT) or "").strip()
    if not question:
        raise BadRow("missing_question")
    # VLM-R1 often stores the gold answer inside <answer> tags; the scorers want the bare answer.
    tagged = _ANSWER_TAG.search(answer)
    answer = tagged.group(1).strip() if tagged else answer
    if not answer:
        raise BadRow("missing_answer")
    return question, answer


def _string_list(record: dict[str, Any], key: str) -> list[str] | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRow(f"bad_{key}")
    return [v.strip() for v in value]


def _image_path(record: dict[str, Any], root: Path) -> str:
    image = record.get("image", record.get("images"))
    if isinstance(image, list):
        if len(image) != 1:
            raise BadRow("not_one_image")
        image = image[0]
    if not isinstance(image, str) or not image.strip():
        raise BadRow("missing_image")
    path = root / image.strip()
    check_image_file(path)
    return str(path.resolve())


def jsonl_row(line: str, cfg: DataConfig) -> dict[str, Any]:
    """One line -> a row whose image is a file path, decoded only when the row is read."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadRow("bad_json") from exc
    if not isinstance(record, dict):
        raise BadRow("not_an_object")
    if "conversations" in record:
        question, answer = _from_conversations(record)
    else:
        question = text_field(record, "question")
        answer = text_field(record, "answer" if "answer" in record else "solution")
    assert cfg.path is not None
    root = Path(cfg.image_root) if cfg.image_root is not None else Path(cfg.path).parent
    meta = record.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise BadRow("bad_meta")
    row: dict[str, Any] = {
        "question": question,
        "image": _image_path(record, root),
        "solution": answer,
    }
    for key in ("answers", "choices", "explanation"):
        if (values := _string_list(record, key)) is not None:
            row[key] = values
    if meta is not None:
        row["meta"] = meta
    elif "id" in record:
        row["meta"] = {"id": str(record["id"])}
    return row
