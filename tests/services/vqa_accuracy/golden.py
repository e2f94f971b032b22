"""The golden VQA cases (tests/data/golden/vqa_accuracy.jsonl), loaded once for the test modules."""

from __future__ import annotations

import json
from pathlib import Path

GOLDEN_PATH = Path(__file__).resolve().parents[2] / "data" / "golden" / "vqa_accuracy.jsonl"


def load_golden() -> list[dict]:
    with GOLDEN_PATH.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


GOLDEN = load_golden()
GOLDEN_IDS = [f"case{i:03d}" for i in range(len(GOLDEN))]
