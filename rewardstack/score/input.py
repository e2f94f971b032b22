"""Reading the input of `rewardstack score`: every line checked, every broken one listed, before a request.

A line is a JSON object with ScoreItem's fields; `image` is a path relative to the file, read and
sent inline. Other keys (ids, notes) travel through to the output untouched, except keys that look
like a misspelled field (`refrence`) or a field under another name (`answer`): those would be
ignored silently and every reward would come back null, so they are refused with the fix.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
from pathlib import Path

from pydantic import ValidationError

from proto.models import ImageData, ScoreItem

ITEM_FIELDS = frozenset(ScoreItem.model_fields) - {"image_id"}
# What other tools call these fields; a line using them meant the field, not a pass-through note.
ALIASES = {
    "answer": "reference", "answers": "reference", "solution": "reference", "gold": "reference",
    "ground_truth": "reference", "label": "reference", "target": "reference", "references": "reference",
    "response": "completion", "output": "completion", "completions": "completion", "text": "completion",
    "question": "prompt", "query": "prompt", "image_path": "image", "images": "image", "options": "choices",
    "image_id": "image",
}
# Keys `score` writes; a rescored file carries them and they are replaced, not compared.
OUTPUT_KEYS = frozenset({"rewards", "status", "reason"})
MAX_LISTED = 20


class InputError(ValueError):
    """The input file cannot be scored; the message lists every broken line."""


def read_items(path: Path) -> tuple[list[dict], list[ScoreItem], dict[str, ImageData]]:
    """Every line, its ScoreItem, and the images it names; all broken lines reported at once."""
    if not path.is_file():
        raise InputError(f"{path} does not exist; give a JSONL file with one completion per line")
    rows, items, images, problems = [], [], {}, []
    ids_by_path: dict[Path, str] = {}  # the K lines of a group name one file: read it once
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row, item = _parse_line(line, path.parent, ids_by_path, images)
        except _LineError as exc:
            problems.append(f"{path}:{n}: {exc}")
            continue
        rows.append(row)
        items.append(item)
    if problems:
        shown = problems[:MAX_LISTED]
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise InputError(f"{len(problems)} broken line(s), nothing was sent:\n  " + "\n  ".join(shown) + more)
    if not items:
        raise InputError(f"{path} has no items")
    return rows, items, images


class _LineError(ValueError):
    pass


def _parse_line(line: str, root: Path, ids_by_path: dict[Path, str], images: dict[str, ImageData]):
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _LineError(f"not JSON ({exc})") from None
    if not isinstance(row, dict):
        raise _LineError(f"a line must be a JSON object, got {type(row).__name__}")
    errors = [msg for key in row if (msg := unknown_key_message(key, row))]
    fields = {k: v for k, v in row.items() if k in ITEM_FIELDS}
    if "image" in row:
        fields.pop("image", None)
        try:
            fields["image_id"] = _local_image(root / str(row["image"]), ids_by_path, images)
        except OSError as exc:
            errors.append(f"image {row['image']!r}: {exc.strerror or exc}")
    try:
        item = ScoreItem.model_validate(fields)
    except ValidationError as exc:
        errors.extend(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in exc.errors())
        item = None
    if errors:
        raise _LineError("; ".join(errors))
    return row, item


def unknown_key_message(key: str, row: dict) -> str | None:
    """Why `key` is refused, naming the field it probably meant; None for a pass-through key.

    Only a key that points at a field the line lacks is refused: beside a `reference`, an `answer`
    key is a note, not a mistake.
    """
    if key in ITEM_FIELDS or key in OUTPUT_KEYS or key == "image":
        return None
    meant = ALIASES.get(key.lower())
    if meant is None:
        close = difflib.get_close_matches(key.lower(), sorted(ITEM_FIELDS | {"image"}), n=1, cutoff=0.75)
        meant = close[0] if close else None
    if meant is None or meant in row:
        return None
    return f"unknown key {key!r} (did you mean {meant!r}?)"


def _local_image(path: Path, ids_by_path: dict[Path, str], images: dict[str, ImageData]) -> str:
    """The id of the image file at `path`, keyed by content so that equal names never collide."""
    resolved = path.resolve()
    if resolved not in ids_by_path:
        raw = resolved.read_bytes()
        image_id = hashlib.sha256(raw).hexdigest()[:32]
        images.setdefault(image_id, ImageData(b64=base64.b64encode(raw).decode()))
        ids_by_path[resolved] = image_id
    return ids_by_path[resolved]
