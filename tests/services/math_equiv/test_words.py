"""Words are not math, and decimal commas: math_equiv against math-verify's own defaults.

The oracle is the installed math-verify called with its defaults (`parse(text)`, then
`verify(gold, answer)`), as TRL's accuracy reward calls it; where this service goes further
(words inside `$…$` are still words) the test says so.
"""

import asyncio

import pytest
from math_verify import parse, verify
from trl.rewards import accuracy_reward

from proto.models import ItemStatus, ScoreItem
from services.common.scoring import Batch
from services.math_equiv.extract import is_plain_number
from services.math_equiv.scorer import MathEquivParams
from services.math_equiv.words import first_word, with_decimal_point


def one(scorer, answer, reference):
    item = ScoreItem(completion=f"<answer>{answer}</answer>", reference=reference)
    return asyncio.run(scorer.score(Batch([item], {}, MathEquivParams())))[0]


ANAGRAMS = [("listen", "silent"), ("Paris", "pairs"), ("forty two", "two forty"), ("no", "on")]


class TestWordReferences:
    @pytest.mark.parametrize(("reference", "answer"), [*ANAGRAMS, ("Paris", "Paris"), ("Paris", "\\boxed{42}")])
    def test_a_word_reference_is_null_with_a_reason(self, scorer, reference, answer):
        result = one(scorer, answer, reference)
        assert (result.reward, result.status) == (None, ItemStatus.unscorable)
        assert "words" in result.reason

    @pytest.mark.parametrize("reference", ["listen", "Paris", "forty two", "two forty"])
    def test_math_verify_and_trl_do_not_score_a_bare_word_reference_either(self, reference):
        assert parse(reference) == []
        # TRL's accuracy_reward skips it (None), as this service gives null.
        completions = [[{"role": "assistant", "content": answer}] for answer in (reference, "\\boxed{42}")]
        assert accuracy_reward(completions, [reference, reference]) == [None, None]

    @pytest.mark.parametrize(("reference", "answer"), [("$listen$", "$silent$"), ("\\boxed{Paris}", "\\boxed{pairs}")])
    def test_words_in_math_delimiters_are_still_words(self, scorer, reference, answer):
        # math-verify reads these as products of one-letter symbols and calls anagrams equal;
        # this service does not, on purpose.
        assert verify(parse(reference), parse(answer))
        assert one(scorer, answer, reference).reward is None

    def test_word_and_math_references_keep_the_math_ones(self, scorer):
        assert one(scorer, "42", ["forty two", "42"]).reward == 1.0
        assert one(scorer, "forty two", ["forty two", "42"]).reward == 0.0


class TestWordAnswers:
    @pytest.mark.parametrize(
        ("answer", "reference"),
        [("forty two", "42"), ("two forty", "240"), ("listen", "\\frac{1}{2}"), ("ab", "a b"),
         ("\\boxed{Paris}", "5"), ("x equals 5", "5"), ("Paris", "x")],
    )
    def test_a_word_answer_is_not_equal_to_a_math_reference(self, scorer, answer, reference):
        result = one(scorer, answer, reference)
        assert (result.reward, result.status, result.reason) == (0.0, ItemStatus.ok, "not_equivalent")

    @pytest.mark.parametrize("answer", ["The answer is $5$", "$5$ meters", "so \\(5\\) it is",
                                        "\\boxed{5} apples", "$$5$$"])
    def test_prose_around_delimited_math_is_not_read(self, scorer, answer):
        # math-verify extracts the delimited math and skips the prose, as it did before.
        assert verify(parse("5"), parse(answer))
        assert one(scorer, answer, "5").reward == 1.0

    def test_words_inside_the_delimiters_are_read(self, scorer):
        assert one(scorer, "The answer is $forty two$", "42").reward == 0.0
        assert one(scorer, "so \\boxed{two forty}", "240").reward == 0.0

    def test_a_word_answer_against_an_unreadable_reference_is_still_null(self, scorer):
        assert one(scorer, "forty two", "\\frac{").reward is None

    @pytest.mark.parametrize(
        ("answer", "reference"),
        [("sin(x)", "sin(x)"), ("2pi", "2pi"), ("\\ln(e^2)", "2"), ("5\\text{ cm}", "5"), ("\\log 8", "3\\log 2"),
         ("x = 5", "5"), ("a b", "b a"), ("\\infty", "\\infty")],
    )
    def test_math_names_and_units_are_not_words(self, scorer, answer, reference):
        assert one(scorer, answer, reference).reward == 1.0


class TestFirstWord:
    @pytest.mark.parametrize(
        ("text", "word"),
        [("listen", "listen"), ("forty two", "forty"), ("3 or 4", "or"), ("\\boxed{Paris}", "Paris"),
         ("Hà Nội", "Hà"), ("\\text{a {b} c} dog", "dog"), ("\\frac{x}{y} + \\sqrt{2}", None),
         ("5\\mathrm{cm}^2", None), ("e^{i\\pi}", None), ("\\sin x + cos x", None)],
    )
    def test_words(self, text, word):
        assert first_word(text) == word

    @pytest.mark.parametrize(
        ("text", "word"),
        [("The answer is $5$", None), ("so $listen$ then", "listen"), ("\\(x\\) and \\[yes\\]", "yes"),
         ("\\boxed{Paris} is it", "Paris"), ("\\$5 and $\\text{cm}$ there", None), ("$$ab$$ cd", "ab")],
    )
    def test_delimited_text_reads_only_its_math(self, text, word):
        assert first_word(text, delimited=True) == word

    def test_long_input_is_one_pass(self):
        assert first_word("\\text{" * 50_000 + "a") is None


ORACLE_NUMBERS = [("1,22", "1.22"), ("0,5", "0.5"), ("12,5%", "0.125"), ("1,000.99$", "1000.99"),
                  ("$1,000.99", "1000.99"), ("1,50€", "1.5"), ("5,5 cm", "5.5"), ("1,234", "1234")]


class TestDecimalCommasAndCurrency:
    @pytest.mark.parametrize(("answer", "reference"), ORACLE_NUMBERS)
    def test_agrees_with_math_verify_defaults(self, scorer, answer, reference):
        expected = float(verify(parse(reference), parse(answer)))
        assert expected == 1.0
        result = one(scorer, answer, reference)
        assert (result.reward, result.status) == (expected, ItemStatus.ok)

    def test_a_decimal_comma_reference(self, scorer):
        assert one(scorer, "1.22", "1,22").reward == 1.0
        assert one(scorer, "1.23", "1,22").reward == 0.0

    def test_a_long_decimal_is_read_whole_where_math_verify_reads_a_fragment(self, scorer):
        assert parse("3,14159")[0] == 3141  # math-verify's default: thousands, then a fragment
        assert one(scorer, "3,14159", "3.14159").reward == 1.0
        assert one(scorer, "3,14159", "3141").reward == 0.0

    def test_a_comma_and_a_space_is_still_a_list(self, scorer):
        assert one(scorer, "1, 22", "1.22").reward == 0.0

    @pytest.mark.parametrize(
        ("text", "read"),
        [("1,22", "1.22"), ("-1,5", "-1.5"), ("1,234", "1,234"), ("0,125", "0.125"),
         ("1,234,567", "1,234,567"), ("1,234.5", "1,234.5"), ("10,50 $", "10.50 $")],
    )
    def test_with_decimal_point(self, text, read):
        assert is_plain_number(text)
        assert with_decimal_point(text) == read
