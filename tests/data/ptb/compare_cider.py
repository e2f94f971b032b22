"""How far each clip_cider tokenizer is from pycocoevalcap's pipeline on the golden sentences.

1,000 items of one candidate and four references drawn (seed 0) from ptb_golden.jsonl; the
reference is pycocoevalcap's `Cider` over the Java tokenizer's tokens, ours tokenizes the raw
sentences. Prints, per tokenizer, how many items agree within 1e-9 and the largest difference.

    python tests/data/ptb/compare_cider.py
"""

import json
import random
from pathlib import Path

from pycocoevalcap.cider.cider import Cider

from services.clip_cider.cider import CiderD
from services.clip_cider.text import tokenizer_for


def main() -> None:
    lines = (Path(__file__).parent / "ptb_golden.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [row for row in map(json.loads, lines) if row["tokens"]]
    rng = random.Random(0)
    items = [rng.sample(rows, 5) for _ in range(1000)]
    gts = {i: [" ".join(r["tokens"]) for r in item[1:]] for i, item in enumerate(items)}
    res = {i: [" ".join(item[0]["tokens"])] for i, item in enumerate(items)}
    expected = Cider().compute_score(gts, res)[1]
    for name in ("default", "ptb"):
        tokenize = tokenizer_for(name)
        refs = [[tokenize(r["sentence"]) for r in item[1:]] for item in items]
        cider = CiderD.from_reference_sets(refs)
        got = [cider.score(tokenize(item[0]["sentence"]), rf) for item, rf in zip(items, refs, strict=True)]
        diffs = [abs(a - b) for a, b in zip(got, expected, strict=True)]
        agree = sum(d <= 1e-9 for d in diffs)
        print(f"{name}: {agree}/{len(items)} within 1e-9 of pycocoevalcap, max |diff| {max(diffs):.3g}")


if __name__ == "__main__":
    main()
