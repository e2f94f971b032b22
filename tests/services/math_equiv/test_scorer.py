"""MathEquivScorer rules on literal cases, with real worker processes and the real math-verify."""

import asyncio

import pytest
from math_verify import parse, verify
from pydantic import ValidationError

from proto.models import ItemStatus, ScoreItem
from services.common.scoring import Batch, NotReadyError
from services.math_equiv.scorer import MathEquivParams, MathEquivScorer
from services.math_equiv.settings import MathEquivSettings


def score(scorer, items, **params):
    items = [it if isinstance(it, ScoreItem) else ScoreItem(**it) for it in items]
    return asyncio.run(scorer.score(Batch(items, {}, MathEquivParams(**params))))


def one(scorer, completion, reference, **fields):
    return score(scorer, [{"completion": completion, "reference": reference, **fields}])[0]


def oracle(gold: str, answer: str) -> float:
    """math-verify called directly, gold first, as its README does."""
    g = parse(gold, parsing_timeout=None)
    p = parse(answer, parsing_timeout=None)
    return float(verify(g, p, timeout_seconds=None))


ORACLE_PAIRS = [
    ("$\\frac{1}{2}$", "$0.5$"),
    ("$\\frac{1}{2}$", "$\\frac{2}{4}$"),
    ("$\\frac{1}{2}$", "$\\frac{1}{3}$"),
    ("$\\sqrt{2}$", "$2^{1/2}$"),
    ("$x^2 + 2x + 1$", "$(x+1)^2$"),
    ("$x^2 + 2x + 1$", "$(x-1)^2$"),
    ("$\\{1, 2, 3\\}$", "$\\{3, 2, 1\\}$"),
    ("$[0, 1)$", "$[0, 1]$"),
    ("$\\pi$", "$3.14159265358979$"),
    ("$\\begin{pmatrix}1 & 2\\end{pmatrix}$", "$\\begin{pmatrix}1 & 2\\end{pmatrix}$"),
    ("$1 < x < 2$", "$(1,2)$"),
    ("$(1,2)$", "$1 < x < 2$"),
    ("$10\\%$", "$0.1$"),
    ("$e^{i\\pi}$", "$-1$"),
]


class TestEquivalence:
    @pytest.mark.parametrize(("gold", "answer"), ORACLE_PAIRS)
    def test_matches_math_verify_called_directly(self, scorer, gold, answer):
        result = one(scorer, f"<answer>{answer}</answer>", gold)
        assert result.status == ItemStatus.ok
        assert result.reward == oracle(gold, answer)

    def test_gold_goes_first(self, scorer):
        # verify is asymmetric: an interval answers an inequality, not the reverse.
        assert one(scorer, "<answer>(1,2)</answer>", "1 < x < 2").reward == 1.0
        assert one(scorer, "<answer>1 < x < 2</answer>", "(1,2)").reward == 0.0

    @pytest.mark.parametrize(
        ("answer", "reference"),
        [("\\dfrac{1}{2}", "0.5"), ("\\sqrt{4}", "2"), ("1,234", "1234"), ("1,234,567", "1234567"),
         ("45°", "45"), ("45^\\circ", "45"), ("5 cm", "5"), ("5\\text{ cm}", "5"), ("$12$", "12"),
         ("x = 5", "5"), ("50%", "0.5"), ("\\frac{1}{2}", "\\frac{2}{4}")],
    )
    def test_written_forms_count(self, scorer, answer, reference):
        result = one(scorer, f"<answer>{answer}</answer>", reference)
        assert (result.reward, result.status, result.reason) == (1.0, ItemStatus.ok, None)

    @pytest.mark.parametrize(
        ("answer", "reference"),
        [("x^2 + 1", "1"), ("2^{10}", "2"), ("3 or 4", "4"), ("1, 2", "2"),
         ("\\frac{1}{2} + \\sqrt{3}", "\\frac{1}{2}"), ("7", "8")],
    )
    def test_a_fragment_of_the_answer_does_not_count(self, scorer, answer, reference):
        result = one(scorer, f"<answer>{answer}</answer>", reference)
        assert (result.reward, result.status) == (0.0, ItemStatus.ok)
        assert result.reason == "not_equivalent"

    def test_boxed_fallback(self, scorer):
        result = one(scorer, "so the total is $\\boxed{\\frac{3}{6}}$", "\\frac{1}{2}")
        assert result.reward == 1.0

    def test_answer_tag_param(self, scorer):
        text = "<REASONING>2+2</REASONING><SOLUTION>4</SOLUTION>"
        assert score(scorer, [{"completion": text, "reference": "4"}], answer_tag="SOLUTION")[0].reward == 1.0
        assert score(scorer, [{"completion": text, "reference": "4"}])[0].reason == "no_answer"

    def test_several_references_accept_any(self, scorer):
        assert one(scorer, "<answer>-2</answer>", ["2", "-2"]).reward == 1.0
        assert one(scorer, "<answer>3</answer>", ["2", "-2"]).reward == 0.0

    def test_no_answer_is_zero(self, scorer):
        result = one(scorer, "I think it is 5.", "5")
        assert (result.reward, result.status, result.reason) == (0.0, ItemStatus.ok, "no_answer")

    def test_unreadable_answer_is_zero(self, scorer):
        result = one(scorer, "<answer>\\frac{</answer>", "5")
        assert (result.reward, result.status) == (0.0, ItemStatus.ok)

    def test_overlong_answer_is_zero_without_parsing(self, scorer):
        long_answer = "1+" * 1500 + "1"
        result = one(scorer, f"<answer>{long_answer}</answer>", "3001")
        assert (result.reward, result.reason) == (0.0, "answer_too_long")
        assert one(scorer, f"<answer>{long_answer}</answer>", "\\frac{").reward is None
        numeric_item = numeric("float", 1)
        assert one(scorer, f"<answer>{long_answer}</answer>", "1.5", **numeric_item).reward == 0.0

    @pytest.mark.parametrize("reference", ["\\frac{", "", "   ", None, "\\\\"])
    def test_unparseable_reference_is_null_even_without_an_answer(self, scorer, reference):
        for completion in ["<answer>5</answer>", "no answer at all"]:
            result = one(scorer, completion, reference)
            assert result.reward is None
            assert result.status == ItemStatus.unscorable
            assert result.reason


MC = {"choices": ["145°", "35°", "55°", "Forty"], "meta": {"question_type": "multi_choice"}}


class TestMultiChoice:
    @pytest.mark.parametrize("answer", ["B", "(B)", "B.", "35°", "35° ", "(B) 35°"])
    def test_right_by_letter_or_text(self, scorer, answer):
        assert one(scorer, f"<answer>{answer}</answer>", "35°", **MC).reward == 1.0

    @pytest.mark.parametrize("answer", ["A", "(C)", "145°", "F", "35", "B or C"])
    def test_wrong_choice_or_none(self, scorer, answer):
        result = one(scorer, f"<answer>{answer}</answer>", "35°", **MC)
        assert (result.reward, result.status) == (0.0, ItemStatus.ok)

    def test_text_is_case_insensitive(self, scorer):
        assert one(scorer, "<answer>forty</answer>", "Forty", **MC).reward == 1.0

    def test_no_answer(self, scorer):
        assert one(scorer, "B", "35°", **MC).reason == "no_answer"

    def test_reference_not_among_choices_is_null(self, scorer):
        result = one(scorer, "<answer>B</answer>", "36°", **MC)
        assert (result.reward, result.status) == (None, ItemStatus.unscorable)

    def test_multi_choice_without_choices_is_null(self, scorer):
        result = one(scorer, "<answer>B</answer>", "35°", meta={"question_type": "multi_choice"})
        assert result.reward is None


def numeric(answer_type, precision=None):
    meta = {"question_type": "free_form", "answer_type": answer_type}
    if precision is not None:
        meta["precision"] = precision
    return {"meta": meta}


class TestPrecision:
    @pytest.mark.parametrize(
        ("answer", "reference", "precision", "reward"),
        [("1.456", "1.46", 2.0, 1.0), ("1.454", "1.46", 2.0, 0.0), ("1.4", "1.46", 1, 0.0),
         ("1.45", "1.5", 1, 1.0), ("2.675", "2.68", 2, 1.0), ("\\frac{1}{3}", "0.33", 2, 1.0),
         ("\\frac{1}{3}", "0.333", 3, 1.0), ("\\frac{1}{3}", "0.3", 2, 0.0), ("1,234.5", "1234.5", 1, 1.0)],
    )
    def test_float_is_compared_after_rounding(self, scorer, answer, reference, precision, reward):
        result = one(scorer, f"<answer>{answer}</answer>", reference, **numeric("float", precision))
        assert result.reward == reward

    def test_integer(self, scorer):
        assert one(scorer, "<answer>12</answer>", "12", **numeric("integer")).reward == 1.0
        assert one(scorer, "<answer>12.0</answer>", "12", **numeric("integer")).reward == 1.0
        assert one(scorer, "<answer>13</answer>", "12", **numeric("integer")).reward == 0.0

    def test_not_a_number_answer_is_zero(self, scorer):
        result = one(scorer, "<answer>x + 1</answer>", "1.5", **numeric("float", 1))
        assert (result.reward, result.reason) == (0.0, "answer_not_a_number")

    @pytest.mark.parametrize(
        ("reference", "precision"), [("twelve", 1), ("1.5", -1), ("1.5", 1.5), ("1.5", "2")]
    )
    def test_bad_reference_or_precision_is_null(self, scorer, reference, precision):
        result = one(scorer, "<answer>1.5</answer>", reference, **numeric("float", precision))
        assert (result.reward, result.status) == (None, ItemStatus.unscorable)


class TestService:
    def test_params_forbid_unknown_fields_and_odd_tags(self):
        with pytest.raises(ValidationError):
            MathEquivParams(answer_tags="x")
        with pytest.raises(ValidationError):
            MathEquivParams(answer_tag="a>b")

    def test_results_keep_the_order_of_a_mixed_batch(self, scorer):
        items = [{"completion": f"<answer>{i % 7}</answer>", "reference": str(i % 5)} for i in range(40)]
        rewards = [r.reward for r in score(scorer, items)]
        assert rewards == [1.0 if i % 7 == i % 5 else 0.0 for i in range(40)]

    def test_config_reports_version_limit_and_workers(self, scorer):
        config = scorer.config()
        assert config["math_verify_version"] == "0.9.0"
        assert (config["time_limit_s"], config["workers"]) == (10.0, 2)

    def test_score_before_load_is_not_ready(self):
        fresh = MathEquivScorer(MathEquivSettings(workers=1))
        assert fresh.not_ready_reason()
        with pytest.raises(NotReadyError):
            score(fresh, [{"completion": "<answer>1</answer>", "reference": "1"}])
