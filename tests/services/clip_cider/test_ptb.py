"""tokenizer: ptb against pycocoevalcap's own Java PTBTokenizer, and CIDEr-D on its tokens.

tests/data/ptb/ptb_golden.jsonl holds what pycocoevalcap 1.2's PTBTokenizer (Stanford CoreNLP
3.4.1) returned for each sentence in tests/data/ptb/sentences.txt (see tests/data/README.md).
"""

import importlib
import json
import random
from pathlib import Path

import pytest
from pycocoevalcap.cider.cider import Cider

from proto.models import ScoreItem
from services.clip_cider import ptb
from services.clip_cider.cider import CiderD
from services.clip_cider.ptb import tokenize_ptb
from services.clip_cider.scorer import ClipCiderParams
from services.clip_cider.text import tokenize
from services.common.scoring import Batch
from tests.services.clip_cider.support import loaded, settings_for

DATA = Path(__file__).parents[2] / "data" / "ptb"
GOLDEN = [json.loads(line) for line in (DATA / "ptb_golden.jsonl").read_text(encoding="utf-8").splitlines()]
IDS = [row["sentence"][:40] for row in GOLDEN]


def test_golden_file_covers_the_sentences():
    sentences = (DATA / "sentences.txt").read_text(encoding="utf-8").splitlines()
    assert [row["sentence"] for row in GOLDEN] == sentences
    assert len(GOLDEN) >= 300


@pytest.mark.parametrize("row", GOLDEN, ids=IDS)
def test_tokens_equal_the_java_tokenizer(row):
    assert tokenize_ptb(row["sentence"]) == row["tokens"]


def test_the_rule_table_built_afresh_tokenizes_the_same():
    # RULES are built once, when the module is imported; building them again here is what puts
    # the rule builder itself under test. Every rule goes through the one builder, so sentences
    # using a trailing context (n't, 's), a pushed-back match (cannot), a rewritten token
    # (brackets, dashes) and capitals cover what it does.
    rows = [row for row in GOLDEN if any(c.isupper() for c in row["sentence"])
            and ({"n't", "'s", "-lrb-", "--"} & set(row["tokens"]) or "cannot" in row["sentence"].lower())]
    assert len(rows) >= 40
    fresh = importlib.reload(ptb)
    assert [fresh.tokenize_ptb(row["sentence"]) for row in rows] == [row["tokens"] for row in rows]


class TestWhatDiffersFromTheDefault:
    @pytest.mark.parametrize(("text", "ptb", "default"), [
        ("a snow-covered hill", ["a", "snow-covered", "hill"], ["a", "snow", "covered", "hill"]),
        ("the man's tire-swing", ["the", "man", "'s", "tire-swing"], ["the", "man", "s", "tire", "swing"]),
        ("it isn't", ["it", "is", "n't"], ["it", "isn", "t"]),
        ("a man (tall)", ["a", "man", "-lrb-", "tall", "-rrb-"], ["a", "man", "tall"]),
    ])
    def test_hyphens_apostrophes_brackets(self, text, ptb, default):
        assert (tokenize_ptb(text), tokenize(text)) == (ptb, default)

    def test_a_long_run_without_spaces_is_still_tokenized(self):
        # Each rule looks at most 256 characters ahead, so this costs time linear in its length.
        tokens = tokenize_ptb("(" * 5_000 + "<a" * 5_000 + " the end")
        assert tokens.count("-lrb-") == 5_000 and tokens[-2:] == ["the", "end"]


def _pycoco(candidates, references):
    gts = {i: [" ".join(r) for r in refs] for i, refs in enumerate(references)}
    res = {i: [" ".join(c)] for i, c in enumerate(candidates)}
    return list(Cider().compute_score(gts, res)[1])


def _items(seed, n=60, refs=4):
    """Candidates and references drawn from the golden sentences with at least one token."""
    rows = [r for r in GOLDEN if r["tokens"]]
    rng = random.Random(seed)
    picked = [rng.sample(rows, refs + 1) for _ in range(n)]
    return [(p[0], p[1:]) for p in picked]


@pytest.mark.parametrize("seed", range(3))
def test_cider_on_ptb_tokens_matches_pycocoevalcap(seed):
    items = _items(seed)
    expected = _pycoco([c["tokens"] for c, _ in items], [[r["tokens"] for r in refs] for _, refs in items])
    # Ours tokenizes the raw sentences itself; pycocoevalcap got the Java tokenizer's tokens.
    ours_refs = [[tokenize_ptb(r["sentence"]) for r in refs] for _, refs in items]
    cider = CiderD.from_reference_sets(ours_refs)
    got = [cider.score(tokenize_ptb(c["sentence"]), refs) for (c, _), refs in zip(items, ours_refs, strict=True)]
    assert got == pytest.approx(expected, abs=1e-9, rel=0)


def test_the_scorer_with_tokenizer_ptb_matches_pycocoevalcap(tiny_config):
    items = _items(7, n=30)
    expected = _pycoco([c["tokens"] for c, _ in items], [[r["tokens"] for r in refs] for _, refs in items])
    batch_items = [
        ScoreItem(completion=f"<explain>{c['sentence']}</explain>", reference=[r["sentence"] for r in refs])
        for c, refs in items
    ]
    with loaded(settings_for(tiny_config)) as scorer:
        params = ClipCiderParams(corpus="request", tokenizer="ptb")
        results = scorer.score(Batch(batch_items, {}, params))
        default = scorer.score(Batch(batch_items, {}, ClipCiderParams(corpus="request")))
        info = scorer.config()["cider"]["tokenizers"]
    assert [r.parts["cider"] for r in results] == pytest.approx(expected, abs=1e-9, rel=0)
    assert [r.parts["cider"] for r in default] != pytest.approx(expected, abs=1e-9, rel=0)
    assert set(info) == {"default", "ptb"}


def test_fixed_corpus_frequencies_follow_the_tokenizer(tiny_config, tmp_path):
    # A corpus in raw text: its document frequencies differ under the two tokenizers.
    corpus = tmp_path / "corpus.jsonl"
    refs = [["A man's snow-covered tire-swing."], ["A man is on a tire swing."], ["Snow covered it."]]
    corpus.write_text("".join(json.dumps({"references": r}) + "\n" for r in refs), encoding="utf-8")
    item = ScoreItem(completion="<explain>a man's tire-swing</explain>", reference=refs[0])
    with loaded(settings_for(tiny_config, corpus_path=corpus)) as scorer:
        [ptb] = scorer.score(Batch([item], {}, ClipCiderParams(tokenizer="ptb")))
        [default] = scorer.score(Batch([item], {}, ClipCiderParams()))
    for result, tok in [(ptb, tokenize_ptb), (default, tokenize)]:
        cider = CiderD.from_reference_sets([[tok(r) for r in rs] for rs in refs])
        assert result.parts["cider"] == cider.score(tok("a man's tire-swing"), [tok(refs[0][0])])
    assert ptb.parts["cider"] != default.parts["cider"]
