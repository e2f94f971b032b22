"""Read the judge's score out of its reply: JSON-schema structured output, or a final `Score:` line.

Only the place the judge was told to put its score is read. A reply that reasons aloud is full
of numbers ("2+2=4, so the completion is wrong. Score: 0"); reading the first one graded
that reply 1.0. Anything else (no score line, two of them, a score line with more on it) is
None, which the scorer turns into a null reward with reason `unparseable judge reply`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

# ASCII digits only, and fullmatch on one short line: no backtracking over a reply.
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?", re.ASCII)
_SCORE_LABEL = "score:"
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
    return (
        f"You may reason briefly first. End your reply with one final line of the form "
        f"`Score: <number from {lo} to {hi}>`, with nothing after the number, and write no "
        "other line that starts with `Score:`."
    )


@dataclass(frozen=True)
class Extracted:
    raw: float
    clamped: float
    normalised: float  # mapped onto [0, 1]


def extract_score(reply: str, scale: tuple[float, float], structured: bool) -> Extracted | None:
    """The score in `reply`, clamped to `scale`; None when the reply holds no usable score."""
    raw = _from_json(reply) if structured else _from_score_line(reply)
    if raw is None or not math.isfinite(raw):
        return None
    lo, hi = scale
    clamped = min(max(raw, lo), hi)
    return Extracted(raw=raw, clamped=clamped, normalised=(clamped - lo) / (hi - lo))


def _from_score_line(reply: str) -> float | None:
    """The number on the reply's one `Score:` line, which must be its last non-blank line.

    A reply that is a lone number and nothing else is read too: it cannot be misread.
    """
    lines = [line.strip() for line in _THINK.sub(" ", reply).splitlines()]
    lines = [line for line in lines if line]
    if len(lines) == 1 and _NUMBER.fullmatch(lines[0]):
        return float(lines[0])
    labelled = [line for line in lines if line[: len(_SCORE_LABEL)].lower() == _SCORE_LABEL]
    if len(labelled) != 1 or labelled[0] != lines[-1]:
        return None
    value = lines[-1][len(_SCORE_LABEL):].strip()
    return float(value) if _NUMBER.fullmatch(value) else None


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
