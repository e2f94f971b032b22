"""CIDEr-D against the golden file and against pycocoevalcap itself; tokenization; corpus files."""

import functools
import random
import re
import unicodedata

import pytest
from pycocoevalcap.cider import cider_scorer
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.cider.cider_scorer import precook

from services.clip_cider.cider import CiderD, document_frequencies, load_corpus, ngram_counts
from services.clip_cider.ptb import tokenize_ptb
from services.clip_cider.text import check_tag_name, extract_explanation, tokenize, tokenizer_for
from tests.services.clip_cider.support import GOLDEN, GOLDEN_PATH

VOCAB = [
    "a", "the", "dog", "cat", "man", "woman", "is", "on", "in", "near", "red", "big", "small",
    "running", "sitting", "table", "street", "because", "it", "yes", "no",
    "con", "mèo", "đang", "ngủ", "trên", "bàn",
]


def pycoco(candidates, references, **options):
    """pycocoevalcap's per-item CIDEr-D over one batch of pre-tokenised strings."""
    gts = {i: refs for i, refs in enumerate(references)}
    res = {i: [c] for i, c in enumerate(candidates)}
    return list(Cider(**options).compute_score(gts, res)[1])


def sentence(rng, lo=0, hi=14):
    return " ".join(rng.choice(VOCAB) for _ in range(rng.randint(lo, hi)))


class TestGolden:
    def test_corpus_document_frequencies_reproduce_every_golden_value(self):
        cider = CiderD.from_reference_sets(
            [[tokenize(r) for r in row["references"]] for row in GOLDEN]
        )
        for row in GOLDEN:
            got = cider.score(tokenize(row["candidate"]), [tokenize(r) for r in row["references"]])
            assert got == pytest.approx(row["cider_d"], abs=1e-9), row

    def test_golden_file_is_already_tokenised(self):
        for row in GOLDEN:
            for text in [row["candidate"], *row["references"]]:
                assert " ".join(tokenize(text)) == text


class TestAgainstPycocoevalcap:
    @pytest.mark.parametrize("seed", range(6))
    def test_random_batches_agree_item_by_item(self, seed):
        rng = random.Random(seed)
        n = rng.choice([1, 2, 5, 30])
        refs = [[sentence(rng, 1) for _ in range(rng.randint(1, 5))] for _ in range(n)]
        cands = [sentence(rng) for _ in range(n)]
        cider = CiderD.from_reference_sets([[r.split() for r in rs] for rs in refs])
        ours = [cider.score(c.split(), [r.split() for r in rs]) for c, rs in zip(cands, refs, strict=True)]
        assert ours == pytest.approx(pycoco(cands, refs), abs=1e-9)

    @pytest.mark.parametrize(("n", "sigma"), [(1, 6.0), (2, 6.0), (3, 2.5), (4, 1.0), (5, 6.0)])
    def test_other_orders_and_length_penalties_agree(self, n, sigma, monkeypatch):
        # pycocoevalcap's CiderScorer takes `n` but cooks n-grams with its default of 4
        # (`cook_append` calls `cook_refs(refs)` without it): pass its own `n` through.
        monkeypatch.setattr(cider_scorer, "cook_refs", functools.partial(cider_scorer.cook_refs, n=n))
        monkeypatch.setattr(cider_scorer, "cook_test", functools.partial(cider_scorer.cook_test, n=n))
        # Lengths differ a lot here, so the length penalty (on bigram counts) weighs in.
        rng = random.Random(n)
        refs = [[sentence(rng, 1, 4), sentence(rng, 8, 14)] for _ in range(6)]
        cands = [sentence(rng, 0, 14) for _ in range(6)] + ["dog", "a dog is on the table near it"]
        refs.append(["dog a dog is on the table near the big red dog"])
        # n-grams of every order shared by two reference sets: their document frequency is 2, not 1.
        refs.append(["a dog is on the table near the big red dog"])
        cider = CiderD.from_reference_sets([[r.split() for r in rs] for rs in refs], n=n, sigma=sigma)
        ours = [cider.score(c.split(), [r.split() for r in rs]) for c, rs in zip(cands, refs, strict=True)]
        assert ours == pytest.approx(pycoco(cands, refs, n=n, sigma=sigma), abs=1e-9)

    def test_defaults_are_pycocoevalcaps(self):
        refs = [["a dog runs on the big red table", "a dog"], ["a cat sleeps"], ["a man near the street"]]
        cands = ["a dog runs on the table", "a big cat sleeps on a red table today", "man"]
        sets = [[r.split() for r in rs] for rs in refs]
        cider = CiderD(document_frequencies(sets), len(sets))
        ours = [cider.score(c.split(), s) for c, s in zip(cands, sets, strict=True)]
        assert ours == pytest.approx(pycoco(cands, refs), abs=1e-9)
        assert min(ours) > 0.0  # every order and the length penalty weigh in
        tokens = ["a", "dog", "runs", "on", "the", "big", "red", "table"]
        assert ngram_counts(tokens) == precook(" ".join(tokens))
        theirs = cider_scorer.CiderScorer()
        for rs in refs:
            theirs.cook_append(None, rs)
        theirs.compute_doc_freq()
        assert document_frequencies(sets) == theirs.document_frequency

    def test_the_reference_vector_cache_is_bounded(self):
        # A long-running service sees new references every step: an unbounded cache only grows.
        cider = CiderD.from_reference_sets([[["a"]]])
        assert cider.score(["a"], [["a"]]) == cider.score(["a"], [["a"]])
        info = cider._reference_vector.cache_info()
        assert info.hits >= 1 and info.maxsize is not None

    def test_no_reference_is_refused_by_name(self):
        cider = CiderD.from_reference_sets([[["a"]]])
        with pytest.raises(ValueError, match=r"^CIDEr-D needs at least one reference$"):
            cider.score(["a"], [])
        with pytest.raises(ValueError, match=r"^CIDEr-D needs at least one reference set to count document frequencies$"):
            CiderD({}, 0)

    def test_edge_cases_agree(self):
        cands = ["", "dog", "dog dog dog dog dog", "a dog is on the table", "a dog is on the table"]
        refs = [["a dog"], ["dog"], ["dog", "a dog is here"], ["a dog is on the table"] * 3,
                ["completely different words here today please"]]
        cider = CiderD.from_reference_sets([[r.split() for r in rs] for rs in refs])
        ours = [cider.score(c.split(), [r.split() for r in rs]) for c, rs in zip(cands, refs, strict=True)]
        assert ours == pytest.approx(pycoco(cands, refs), abs=1e-9)
        assert ours[0] == 0.0


class TestTokenize:
    def test_lower_case_and_punctuation_become_spaces(self):
        words = ["a", "dog", "running", "fast", "dog", "s", "toy"]
        assert tokenize("A Dog, running!  (Fast)... dog's-toy") == words

    def test_vietnamese_letters_survive_and_nfc_equates_spellings(self):
        composed = "Con mèo đang ngủ trên bàn."
        decomposed = unicodedata.normalize("NFD", composed)
        assert decomposed != composed
        assert tokenize(decomposed) == tokenize(composed) == ["con", "mèo", "đang", "ngủ", "trên", "bàn"]


    def test_tokenizers_by_name(self):
        assert tokenizer_for("default") is tokenize
        assert tokenizer_for("ptb") is tokenize_ptb


class TestExplanation:
    def test_the_tag_is_found_whatever_its_case(self):
        text = "<Explain>a dog</EXPLAIN><answer>yes</answer>"
        assert extract_explanation(text, "explain") == "a dog"

    @pytest.mark.parametrize("tag", ["explain", "Why_2", "a-b"])
    def test_tag_names_allowed(self, tag):
        assert check_tag_name(tag) == tag

    @pytest.mark.parametrize("tag", ["2why", "ex plain", "a>b", ""])
    def test_tag_names_refused_with_the_rule(self, tag):
        with pytest.raises(ValueError, match=f"^tag name {re.escape(repr(tag))} must be letters, digits"):
            check_tag_name(tag)

    def test_last_explain_tag_wins(self):
        text = "<explain>first</explain><answer>yes</answer><explain>\n the second one\n</explain>"
        assert extract_explanation(text, "explain") == "the second one"

    def test_without_the_tag_the_whole_completion(self):
        text = "just text <answer>x</answer>"
        assert extract_explanation(f"  {text} ", "explain") == text
        assert extract_explanation("<explain>x</explain>", None) == "<explain>x</explain>"

    def test_other_tag_name(self):
        assert extract_explanation("<REASON>because</REASON>", "REASON") == "because"


class TestCorpusFile:
    def test_hash_and_sets(self):
        corpus = load_corpus(GOLDEN_PATH)
        assert len(corpus.reference_sets) == len(GOLDEN)
        assert corpus.reference_sets[3] == GOLDEN[3]["references"]
        assert len(corpus.sha256) == 64
        assert corpus.path == GOLDEN_PATH

    @pytest.mark.parametrize(("content", "needle"), [
        ('{"references": ["a b"]}\nnot json\n', ":2: not JSON"),
        ('{"references": []}\n', ":1: expected an object with a non-empty 'references'"),
        ('{"refs": ["a"]}\n', ":1: expected"),
        ('["a", "b"]\n', ":1: expected an object"),
        ("\n\n", "has no lines"),
    ])
    def test_bad_files_name_the_line(self, tmp_path, content, needle):
        path = tmp_path / "corpus.jsonl"
        path.write_text(content)
        with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
            load_corpus(path)

    def test_missing_file_names_the_setting(self, tmp_path):
        with pytest.raises(ValueError, match="CLIP_CIDER_CORPUS_PATH"):
            load_corpus(tmp_path / "absent.jsonl")

