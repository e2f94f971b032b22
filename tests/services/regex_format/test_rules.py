"""regex_format: every mode and the edge cases the issue names, through the scorer."""

import pytest

from proto.models import ScoreItem
from services.common.scoring import Batch, ParamsError
from services.regex_format import rules
from services.regex_format.scorer import RegexFormatParams, RegexFormatScorer
from services.regex_format.settings import RegexFormatSettings
from tests.helpers import finishes


def score(completion: str, **params):
    scorer = RegexFormatScorer(RegexFormatSettings())
    batch = Batch([ScoreItem(completion=completion)], {}, RegexFormatParams(**params))
    return scorer.score(batch)[0]


class TestThinkAnswer:
    @pytest.mark.parametrize("text", [
        "<think>a</think><answer>b</answer>",
        "  \n<think>reason\nmore</think>\n\n<answer> 42 </answer>\n",
    ])
    def test_exact_structure_scores_one(self, text):
        res = score(text)
        assert res.reward == 1.0
        assert res.parts == {"think": 1.0, "answer": 1.0}

    @pytest.mark.parametrize("text,why", [
        ("<answer>b</answer>", "missing think"),
        ("<think>a</think>", "missing answer"),
        ("<answer>b</answer><think>a</think>", "out of order"),
        ("<think>a</think><think>c</think><answer>b</answer>", "repeated think"),
        ("<think>a</think><answer>b</answer><answer>c</answer>", "repeated answer"),
        ("<think>a<answer>b</answer></think>", "nested"),
        ("<think>a</think><answer>b", "unclosed"),
        ("hello <think>a</think><answer>b</answer>", "text before"),
        ("<think>a</think><answer>b</answer> bye", "text after"),
        ("<think>a</think> and <answer>b</answer>", "text between"),
        ("<think>  </think><answer>b</answer>", "blank think"),
        ("<think>a</think><answer>\n</answer>", "blank answer"),
        ("<Think>a</Think><answer>b</answer>", "tags are case-sensitive"),
        ("", "empty"),
    ])
    def test_anything_else_scores_zero(self, text, why):
        assert score(text).reward == 0.0, why

    def test_parts_say_what_was_found(self):
        assert score("<answer>b</answer> tail").parts == {"think": 0.0, "answer": 1.0}

    def test_partial_credit_for_found_blocks_only_when_asked(self):
        text = "blah <answer>b</answer>"
        assert score(text).reward == 0.0
        assert score(text, partial=True).reward == pytest.approx(0.25)
        assert score("<think>a</think><answer>b</answer>", partial=True).reward == 1.0

    def test_partial_credit_is_half_the_share_of_blocks_found(self):
        # Two of three blocks: 0.5 * 2/3, the only share that tells * from / (1 of 2 gives 0.25 both ways).
        text = "<think>t</think> <answer>a</answer> and no explanation"
        assert score(text, mode="think_answer_explain", partial=True).reward == pytest.approx(1 / 3)
        assert score("no blocks at all", mode="think_answer_explain", partial=True).reward == 0.0

    def test_strict_tags_without_partial_gives_nothing_for_a_near_miss(self):
        assert rules.strict_tags("<think>a</think> then", ("think", "answer")) == rules.Verdict(
            0.0, {"think": 1.0, "answer": 0.0})


class TestReasoningSolution:
    @pytest.mark.parametrize("text,expected", [
        ("<REASONING>r</REASONING><SOLUTION>4</SOLUTION>", 1.0),
        ("intro <REASONING>r</REASONING> then <SOLUTION>4</SOLUTION> end", 1.0),
        ("<REASONING>r</REASONING>", 0.5),
        ("<SOLUTION>4</SOLUTION>", 0.5),
        ("<REASONING>r</REASONING><REASONING>s</REASONING><SOLUTION>4</SOLUTION>", 0.5),
        ("<reasoning>r</reasoning><solution>4</solution>", 0.0),
        ("<SOLUTION></SOLUTION>", 0.0),
    ])
    def test_half_per_block(self, text, expected):
        assert score(text, mode="reasoning_solution").reward == expected

    def test_parts_name_each_block(self):
        parts = score("<SOLUTION>4</SOLUTION>", mode="reasoning_solution").parts
        assert parts == {"REASONING": 0.0, "SOLUTION": 1.0}


class TestThinkAnswerExplain:
    def test_all_three_in_order(self):
        text = "<think>t</think><answer>a</answer><explain>e</explain>"
        assert score(text, mode="think_answer_explain").reward == 1.0

    @pytest.mark.parametrize("text", [
        "<think>t</think><explain>e</explain><answer>a</answer>",
        "<think>t</think><answer>a</answer>",
        "<think>t</think><answer>a</answer><explain>e</explain>!",
        "<think>t</think><answer>a</answer><explain></explain>",
    ])
    def test_wrong_order_missing_or_extra(self, text):
        assert score(text, mode="think_answer_explain").reward == 0.0


class TestCustomTags:
    def test_ordered_list(self):
        text = "<plan>p</plan> <code>c</code>"
        assert score(text, mode="tags", tags=["plan", "code"]).reward == 1.0
        assert score(text, mode="tags", tags=["code", "plan"]).reward == 0.0

    def test_tag_named_like_a_keyword_is_fine(self):
        assert score("<reason>r</reason>", mode="tags", tags=["reason"]).parts == {"reason": 1.0}

    def test_tags_mode_needs_tags(self):
        with pytest.raises(ValueError, match="needs a non-empty 'tags'"):
            RegexFormatParams(mode="tags")

    def test_tag_names_are_checked(self):
        with pytest.raises(ValueError, match="tags must be distinct"):
            RegexFormatParams(mode="tags", tags=["a>b"])


class TestPattern:
    def test_full_and_search(self):
        assert score("Answer: 42", mode="pattern", pattern=r"Answer: \d+").reward == 1.0
        assert score("Answer: 42", mode="pattern", pattern=r"Answer: \d+").parts == {"match": 1.0}
        assert score("Answer: x", mode="pattern", pattern=r"Answer: \d+").parts == {"match": 0.0}
        assert score("So. Answer: 42", mode="pattern", pattern=r"Answer: \d+").reward == 0.0
        assert score("So. Answer: 42", mode="pattern", pattern=r"Answer: \d+", match="search").reward == 1.0

    @pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=a)b", r"(unclosed"])
    def test_unsupported_pattern_is_a_params_error(self, pattern):
        with pytest.raises(ParamsError, match="not supported by RE2"):
            score("x", mode="pattern", pattern=pattern)

    def test_catastrophic_backtracking_pattern_answers(self):
        # Backtracking would take longer than the universe has left; RE2 takes microseconds.
        res = finishes(lambda: score("x" * 10_000, mode="pattern", pattern=r"(x+x+)+y"))
        assert res.reward == 0.0

    def test_overlong_pattern_refused(self):
        with pytest.raises(ParamsError, match="MAX_PATTERN_LENGTH"):
            score("x", mode="pattern", pattern="a" * 5000)
