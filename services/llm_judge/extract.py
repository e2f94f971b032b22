"""Read the judge's score out of its reply: JSON-schema structured output, or the first number."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
# A reasoning judge may think aloud before it scores; its thoughts are full of numbers.
_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def score_schema(scale: tuple[float, float]) -> dict:
    """The `response_format` asking for {"reason": str, "score": number} (reason first, to think)."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "judge_score",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {
                    "reason": {"type": "string", "description": "one sentence"},
                    "score": {"type": "number", "minimum": scale[0], "maximum": scale[1]},
                },
                "required": ["reason", "score"],
                "additionalProperties": False,
            },
        },
    }


def reply_rule(scale: tuple[float, float], structured: bool) -> str:
    """The last line of the judge prompt, saying how to answer."""
    lo, hi = (f"{v:g}" for v in scale)
    if structured:
        return (
            f'Reply with a JSON object {{"reason": "<one sentence>", "score": <number from {lo} '
            f"to {hi}>}} and nothing else."
        )
    return f"Reply with the score alone: one number from {lo} to {hi}, and nothing else."


@dataclass(frozen=True)
class Extracted:
    raw: float
    clamped: float
    normalised: float  # mapped onto [0, 1]


def extract_score(reply: str, scale: tuple[float, float], structured: bool) -> Extracted | None:
    """The score in `reply`, clamped to `scale`; None when the reply holds no usable score."""
    raw = _from_json(reply) if structured else _first_number(reply)
    if raw is None or not math.isfinite(raw):
        return None
    lo, hi = scale
    clamped = min(max(raw, lo), hi)
    return Extracted(raw=raw, clamped=clamped, normalised=(clamped - lo) / (hi - lo))


def _first_number(reply: str) -> float | None:
    match = _NUMBER.search(_THINK.sub(" ", reply))
    return float(match.group(0)) if match else None


def _from_json(reply: str) -> float | None:
    text = _THINK.sub(" ", reply).strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    score = obj.get("score") if isinstance(obj, dict) else None
    if isinstance(score, bool) or not isinstance(score, int | float | str):
        return None
    try:
        return float(score)
    except ValueError:
        return None
