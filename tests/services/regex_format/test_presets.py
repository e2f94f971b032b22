"""The trl_/openr1_ presets give what TRL's and open-r1's own rewards give.

Cases are written here after the behaviour those projects' test suites assert (TRL
tests/test_rewards.py::TestThinkFormatReward; open-r1 tests/test_rewards.py format_reward and
tag_count_reward). TRL's `think_format_reward` is called (trl is a dev dependency); open-r1 is
not a package on PyPI, so its two functions are stated below as its source
(src/open_r1/rewards.py) states them. Both are the oracle for every literal case and for a
randomised comparison on strings built from the tags' own pieces.
"""

import random
import re

import pytest
from trl.rewards import think_format_reward

from proto.models import ScoreItem
from services.common.scoring import Batch
from services.regex_format.presets import openr1_format, openr1_tag_count, trl_think_format
from services.regex_format.scorer import RegexFormatParams, RegexFormatScorer
from services.regex_format.settings import RegexFormatSettings


def trl_think(text: str) -> float:
    return think_format_reward([[{"role": "assistant", "content": text}]])[0]


def openr1_format_reward(text: str) -> float:
    """open-r1's `format_reward` on one completion, as its source states it (short strings only)."""
    pattern = r"^<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$"
    return 1.0 if re.match(pattern, text, re.DOTALL | re.MULTILINE) else 0.0


def openr1_tag_count_reward(text: str) -> float:
    """open-r1's `tag_count_reward` on one completion, as its source states it."""
    count = 0.0
    for marker in ("<think>\n", "\n</think>\n", "\n<answer>\n", "\n</answer>"):
        if text.count(marker) == 1:
            count += 0.25
    return count


def score(completion: str, mode: str):
    scorer = RegexFormatScorer(RegexFormatSettings())
    return scorer.score(Batch([ScoreItem(completion=completion)], {}, RegexFormatParams(mode=mode)))[0]


class TestTrlThinkFormat:
    @pytest.mark.parametrize("text", [
        "<think>short reasoning</think>final words",
        "<think>\nline one\n</think>\nthe answer follows",
        "<think>\nstep\nstep two\n</think>\nanswer",
        "<think>uses <b>other</b> tags</think>\nanswer",
        "<think></think>only an answer",
        "<think>r</think>",
        "<think>r</think></think> twice closed",
    ])
    def test_accepted(self, text):
        assert score(text, "trl_think_format").reward == trl_think(text) == 1.0
        assert score(text, "trl_think_format").parts == {"think": 1.0}

    @pytest.mark.parametrize("text", [
        "<think>\nnever closed\nanswer",
        "<think>never closed either",
        "plain text only",
        "reasoning</think>\nanswer without an opening",
        "before<think>r</think>answer",
        " <think>r</think>answer",
        "<think>outer<think>inner</think></think>answer",
        "<think>a</think>\nmore\n<think>b</think>\nanswer",
        "",
    ])
    def test_rejected(self, text):
        assert score(text, "trl_think_format").reward == trl_think(text) == 0.0
        assert score(text, "trl_think_format").parts == {"think": 0.0}

    def test_free_text_after_think_is_what_differs_from_think_answer(self):
        text = "<think>r</think>The answer is 4."
        assert score(text, "trl_think_format").reward == 1.0
        assert score(text, "think_answer").reward == 0.0


class TestOpenR1Format:
    @pytest.mark.parametrize("text", [
        "<think>\nreasoning\n</think>\n<answer>\n42\n</answer>",
        "<think>\nI count:\n1. a bus\n2. a car\n\nTwo in all.\n</think>\n<answer>\n2\n</answer>",
        "<think>\n\n</think>\n<answer>\n\n</answer>",
        "<think>\nr\n</think>\n<answer>\n4\n</answer>\ntrailing line",
        # The earliest middle counts: a tail after it, then a second middle with no tail.
        "<think>\na\n</think>\n<answer>\nb\n</answer>\n</think>\n<answer>\nc",
        # The first tail is not at a line's end, a later one is.
        "<think>\na\n</think>\n<answer>\nb\n</answer>x\n</answer>\n\n</answer>y",
    ])
    def test_accepted(self, text):
        assert score(text, "openr1_format").reward == openr1_format_reward(text) == 1.0
        assert score(text, "openr1_format").parts == {"match": 1.0}

    @pytest.mark.parametrize("text", [
        "<think>just thinking</think>",
        "<answer>just answering</answer>",
        "no tags",
        "<think>closed</think><answer>never closed",
        "<think>crossed</answer><answer>crossed</think>",
        "<think>r</think><answer>4</answer>",
        "<think>\nr\n</think>\n<answer>\n4\n</answer> trailing on the same line",
        "\n<think>\nr\n</think>\n<answer>\n4\n</answer>",
        "<think>\n</think>\n<answer>\n4\n</answer>",
        # A tail before the middle does not count, only one after it.
        "<think>\nx\n</answer>\n</think>\n<answer>\n4",
    ])
    def test_rejected(self, text):
        assert score(text, "openr1_format").reward == openr1_format_reward(text) == 0.0
        assert score(text, "openr1_format").parts == {"match": 0.0}

    def test_think_answer_disagrees_on_newlines(self):
        text = "<think>r</think><answer>4</answer>"
        assert (score(text, "think_answer").reward, score(text, "openr1_format").reward) == (1.0, 0.0)


class TestOpenR1TagCount:
    @pytest.mark.parametrize(("text", "expected"), [
        ("<think>\nreasoning\n</think>\n<answer>\nanswer\n</answer>", 1.0),
        ("reasoning\n</think>\n<answer>\nanswer\n</answer>", 0.75),
        ("<think>\nreasoning\n<answer>\nanswer\n</answer>", 0.75),
        ("<think>\nreasoning\n</think>\nanswer\n</answer>", 0.75),
        ("<think>\nreasoning\n</think>\n<answer>\nanswer", 0.75),
        ("reasoning\nanswer", 0.0),
        ("<think>r</think><answer>a</answer>", 0.0),
        ("<think>\n<think>\nx\n</think>\n<answer>\na\n</answer>", 0.75),
        ("\n</answer>\n<answer>\n<think>\n\n</think>\n", 1.0),
    ])
    def test_quarter_per_marker_present_once(self, text, expected):
        result = score(text, "openr1_tag_count")
        assert result.reward == openr1_tag_count_reward(text) == expected
        assert sum(result.parts.values()) * 0.25 == expected

    def test_differs_from_partial_think_answer(self):
        text = "<think>\nreasoning\n</think>\nno answer block"
        assert score(text, "openr1_tag_count").reward == 0.5
        scorer = RegexFormatScorer(RegexFormatSettings())
        params = RegexFormatParams(mode="think_answer", partial=True)
        assert scorer.score(Batch([ScoreItem(completion=text)], {}, params))[0].reward == 0.25


PIECES = ["<think>", "</think>", "<answer>", "</answer>", "\n", "x", " ", "<", ">", "/"]


def test_agree_with_the_originals_on_random_strings():
    rng = random.Random(11)
    texts = ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 14))) for _ in range(4000)]
    trl = think_format_reward([[{"role": "assistant", "content": t}] for t in texts])
    for text, want in zip(texts, trl, strict=True):
        assert trl_think_format(text).score == want, repr(text)
        assert openr1_format(text).score == openr1_format_reward(text), repr(text)
        assert openr1_tag_count(text).score == openr1_tag_count_reward(text), repr(text)


def test_long_adversarial_input_is_scanned_not_backtracked():
    # A lazy regex over this would retry the tail at every "\n</answer>"; the scan reads it once.
    text = "<think>\n" + "\n</think>\n<answer>\n" + "\n</answer>x" * 200_000
    assert openr1_format(text).score == 0.0
    assert trl_think_format("<think>" + "</think" * 200_000).score == 0.0
