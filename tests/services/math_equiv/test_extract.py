"""Answer extraction, plain-number classification and multiple-choice matching (no workers)."""

import pytest

from services.math_equiv.extract import (
    choice_indices,
    chosen_index,
    extract_answer,
    is_delimited,
    is_plain_number,
    last_boxed,
)
from tests.helpers import finishes


class TestExtractAnswer:
    def test_last_answer_tag_wins(self):
        text = "<answer>1</answer> wait, no <answer> 2 </answer>"
        assert extract_answer(text, "answer") == "2"

    def test_tag_is_the_param_and_case_insensitive(self):
        text = "<REASONING>r</REASONING><SOLUTION>\\frac{1}{2}</SOLUTION>"
        assert extract_answer(text, "SOLUTION") == "\\frac{1}{2}"
        assert extract_answer(text, "solution") == "\\frac{1}{2}"
        assert extract_answer(text, "answer") is None

    def test_nested_opening_tag_takes_the_nearest(self):
        assert extract_answer("<answer>draft <answer>7</answer>", "answer") == "7"

    def test_tag_beats_boxed(self):
        assert extract_answer("\\boxed{3} <answer>4</answer>", "answer") == "4"

    def test_boxed_fallback_is_the_last_boxed(self):
        text = "first \\boxed{1}, finally $\\boxed{\\frac{3}{4}}$."
        assert extract_answer(text, "answer") == "\\frac{3}{4}"

    def test_empty_tag_falls_back_to_boxed(self):
        assert extract_answer("<answer> </answer> \\boxed{5}", "answer") == "5"

    @pytest.mark.parametrize(
        "text", ["The answer is 5.", "<answer>5", "5</answer>", "<answer></answer>", "\\boxed{5", ""]
    )
    def test_no_answer(self, text):
        assert extract_answer(text, "answer") is None


class TestLastBoxed:
    def test_balanced_braces_and_escaped_braces(self):
        assert last_boxed("\\boxed{\\{1, 2\\}}") == "\\{1, 2\\}"
        assert last_boxed("\\boxed{\\frac{a}{b}} text") == "\\frac{a}{b}"

    def test_unbalanced_last_falls_back_to_a_closed_one(self):
        assert last_boxed("\\boxed{1} then \\boxed{2") == "1"

    def test_fbox(self):
        assert last_boxed("\\fbox{9}") == "9"

    def test_many_unclosed_boxed_stay_linear(self):
        text = "\\boxed{" * 20_000 + "x"
        # Quadratic rescanning would take minutes here; linear takes milliseconds.
        assert finishes(lambda: last_boxed(text)) is None


class TestClassify:
    @pytest.mark.parametrize(
        "text", ["5", "-3", "1,234", "1 234", "1,234.5", "0.5", ".5", "45°", "50%", "5 cm",
                 "5cm", "3.5 m/s", "12 square units", "$5", "7 cm^2", "100."]
    )
    def test_plain_numbers(self, text):
        assert is_plain_number(text)

    @pytest.mark.parametrize(
        "text", ["x^2 + 1", "2^{10}", "3 or 4", "1, 2", "1/2", "\\frac{1}{2}", "2x", "x = 5",
                 "The answer is 5", "1" * 100]
    )
    def test_not_plain(self, text):
        assert not is_plain_number(text)

    @pytest.mark.parametrize("text", ["$x$", "\\(x\\)", "\\[x\\]", "\\boxed{1}"])
    def test_delimited(self, text):
        assert is_delimited(text)
        assert not is_delimited("\\frac{1}{2}")


class TestChoices:
    CHOICES = ("145°", "35°", "Forty")

    def test_an_option_whose_text_is_a_letter_comes_before_letters(self):
        assert chosen_index("B", ["C", "A", "B"]) == 2
        assert chosen_index("(A)", ["C", "A", "B"]) == 0

    def test_letter_forms(self):
        choices = ["3", "4", "5"]
        for answer in ["B", "(B)", "B.", "(b)", " B "]:
            assert chosen_index(answer, choices) == 1

    def test_text_is_case_and_space_insensitive(self):
        assert chosen_index("  forty ", self.CHOICES) == 2
        assert chosen_index("145°.", self.CHOICES) == 0

    def test_letter_with_its_text(self):
        assert chosen_index("(A) 145°", self.CHOICES) == 0
        assert chosen_index("A. 35°", self.CHOICES) is None  # letter and text disagree

    def test_out_of_range_letter_and_other_text_pick_nothing(self):
        assert chosen_index("F", ["1", "2"]) is None
        assert chosen_index("36°", self.CHOICES) is None

    def test_reference_indices(self):
        assert choice_indices("forty", self.CHOICES) == {2}
        assert choice_indices(["35°", "nope"], self.CHOICES) == {1}
        assert choice_indices("nope", self.CHOICES) == set()
