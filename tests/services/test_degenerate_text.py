"""The linear extractors give exactly what the old backtracking patterns gave, on every small input."""

import re
import sys

import pytest

from services.clip_cider.text import extract_explanation
from services.common import tags
from services.llm_judge.rubrics import Rubric, RubricError, _parse, answer_regex, load_rubric
from services.math_equiv import extract as math_extract
from services.regex_format import rules
from services.vqa_accuracy.normalize import extract_answer
from tests.services import degenerate as d

SMALL = {**d.SMALL, **d.FUZZ}
TAG_NAMES = ["answer", "explain", "think", "plan", "check", "REASONING", "SOLUTION"]


@pytest.mark.parametrize("tag", TAG_NAMES)
def test_blocks_equal_findall(tag):
    pattern = rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>"
    for name, text in SMALL.items():
        assert tags.blocks(text, tag) == re.findall(pattern, text, re.DOTALL), name
        want = re.findall(pattern, text, re.DOTALL | re.IGNORECASE)
        assert tags.blocks(text, tag, ignore_case=True) == want, name
        last = tags.last_block(text, tag)
        assert last == (want_cs[-1] if (want_cs := re.findall(pattern, text, re.DOTALL)) else None), name


def test_case_folding_is_exactly_re_ignorecase_on_every_code_point():
    # Any character that re.IGNORECASE lets stand for a tag character must fold to it, and no other.
    everything = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000)
    folded = tags._fold(everything)
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789_-":
        by_re = {m.start() for m in re.finditer(re.escape(ch), everything, re.IGNORECASE)}
        by_fold = {i for i, c in enumerate(folded) if c == ch}
        assert by_fold == by_re, ch


def test_case_insensitive_tags_must_be_ascii():
    with pytest.raises(ValueError, match="ASCII"):
        tags.blocks("<é>x</é>", "é", ignore_case=True)


@pytest.mark.parametrize("tag_set", [("think", "answer"), ("think", "answer", "explain"), d.TAGS5,
                                     ("answer",), ("plan", "check")])
@pytest.mark.parametrize("partial", [False, True])
def test_strict_tags_equal_the_old_fullmatch(tag_set, partial):
    for name, text in SMALL.items():
        for variant in (text, f"  {text}\n", text.replace("x", "  ")):
            assert rules.strict_tags(variant, tag_set, partial) == d.old_strict_tags(
                variant, tag_set, partial), name


def test_strict_tags_white_space_between_blocks_is_unicode_white_space():
    for gap in ["", " ", "\n\t", "\u00a0", "\u2003", "\u3000", "\x1c", ".", "_", "\u200b"]:
        text = f"<think>a</think>{gap}<answer>b</answer>"
        want = d.old_strict_tags(text, ("think", "answer")).score
        assert rules.strict_tags(text, ("think", "answer")).score == want, repr(gap)


def test_vqa_and_clip_extraction_equal_the_old_findall():
    for name, text in SMALL.items():
        for tag in ("answer", "explain", "think"):
            assert extract_answer(text, tag) == d.old_vqa_extract_answer(text, tag), name
            assert extract_explanation(text, tag) == d.old_extract_explanation(text, tag), name
        assert extract_explanation(text, None) == d.old_extract_explanation(text, None)


def test_math_answer_tags_equal_the_old_finditer(monkeypatch):
    extract = math_extract
    for tag in ("answer", "SOLUTION", "a", "aa"):
        got = {name: extract.extract_answer(text, tag) for name, text in SMALL.items()}
        monkeypatch.setattr(extract, "_last_tag", d.old_math_last_tag)
        want = {name: extract.extract_answer(text, tag) for name, text in SMALL.items()}
        monkeypatch.undo()
        assert got == want, tag


@pytest.mark.parametrize("pattern", [r"<answer>(.*?)</answer>", r"<answer>.*?</answer>",
                                     r"ANSWER: (\w+)", r"<(?:answer|solution)>(.*?)</(?:answer|solution)>"])
def test_rubric_answer_by_re2_equals_re_search(pattern):
    rubric = Rubric(name="t", system="s", user="${completion}", answer_pattern=pattern)
    for name, text in {**SMALL, "word": "ANSWER: yes", "sol": "<solution> 4 </solution>"}.items():
        assert rubric.answer(text) == d.old_rubric_answer(rubric, text), name


def test_builtin_rubrics_compile_with_re2():
    for name in ("default", "correctness"):
        answer_regex(load_rubric(name).answer_pattern)


def test_rubric_pattern_re2_cannot_run_is_refused_at_load():
    text = "system: s\nuser: '${completion}'\nanswer_pattern: '(?<=x)y'\n"
    with pytest.raises(RubricError, match="RE2"):
        _parse("t", text, "test")


def test_large_members_are_scanned():
    # The 64 KB members would take seconds with the old patterns; here they are plain calls.
    for name, text in d.LARGE.items():
        assert extract_answer(text, "answer")[1] == ("</answer>" in text), name
        rules.strict_tags(text, d.TAGS5, partial=True)
        extract_explanation(text, "explain")
        math_extract.extract_answer(text, "answer")
        Rubric(name="t", system="s", user="${completion}").answer(text)
