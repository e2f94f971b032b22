"""The official VQA accuracy and its answer processing, against the golden file and literal cases."""

import pytest

from services.vqa_accuracy.official import (
    process_digit_article,
    process_punctuation,
    single_answer_accuracy,
    vqa_accuracy,
)
from tests.services.vqa_accuracy.golden import GOLDEN, GOLDEN_IDS


def test_golden_file_is_whole():
    assert len(GOLDEN) == 400
    assert all(len(case["answers"]) == 10 for case in GOLDEN)


@pytest.mark.parametrize("case", GOLDEN, ids=GOLDEN_IDS)
def test_golden_vqa_accuracy(case):
    acc, _ = vqa_accuracy(case["prediction"], case["answers"])
    assert acc == pytest.approx(case["vqa_accuracy"], abs=1e-9)


class TestProcessPunctuation:
    def test_mark_touching_a_space_is_deleted_everywhere(self):
        # "? " occurs once, so every "?" goes, including the one inside "a?b".
        assert process_punctuation("a?b ? c") == "ab  c"

    @pytest.mark.parametrize("text", ["a? b", "a ?b"])
    def test_a_space_on_one_side_is_enough(self, text):
        # vqaEval.py: `(p + " " in inText or " " + p in inText)`.
        assert process_punctuation(text) == "a b"

    def test_mark_not_touching_a_space_becomes_a_space(self):
        assert process_punctuation("black/white") == "black white"

    def test_digit_comma_digit_deletes_all_marks(self):
        assert process_punctuation("1,000 (approx)") == "1000 approx"

    def test_period_before_a_digit_stays(self):
        assert process_punctuation("3.5 m.") == "3.5 m"

    def test_apostrophe_and_colon_are_kept(self):
        assert process_punctuation("st. patrick's 1:30") == "st patrick's 1:30"

    def test_at_most_32_periods_removed(self):
        # re.UNICODE lands in re.sub's count in the official code.
        assert process_punctuation("." * 40) == "." * 8


class TestProcessDigitArticle:
    def test_number_words_articles_and_case(self):
        assert process_digit_article("The Two  dogs and A none") == "2 dogs and 0"

    def test_contractions_get_apostrophes(self):
        assert process_digit_article("dont know whats") == "don't know what's"

    def test_capitalised_contraction_keys_never_match(self):
        # The official table has "Im" but the text is lower-cased first.
        assert process_digit_article("Im") == "im"


class TestVqaAccuracy:
    def test_four_matches_of_ten_is_full_credit(self):
        assert vqa_accuracy("cat", ["cat"] * 4 + ["dog"] * 6) == (1.0, 4)

    def test_three_matches_of_ten_is_not_full_credit(self):
        # Leaving out one of the three matching answers leaves two: 7 subsets at 1, 3 at 2/3.
        assert vqa_accuracy("cat", ["cat"] * 3 + ["dog"] * 7)[0] == pytest.approx(0.9)

    def test_two_matches_of_ten(self):
        # 8 subsets keep both matches (2/3), 2 subsets keep one (1/3).
        acc, matches = vqa_accuracy("cat", ["cat"] * 2 + ["dog"] * 8)
        assert matches == 2
        assert acc == pytest.approx((8 * 2 / 3 + 2 * 1 / 3) / 10)

    def test_unanimous_answers_skip_processing(self):
        assert vqa_accuracy("a 0", ["0"] * 10)[0] == 0.0
        assert vqa_accuracy("0", ["0"] * 10)[0] == 1.0

    def test_disagreeing_answers_process_both_sides(self):
        assert vqa_accuracy("Two!", ["2"] * 9 + ["two dogs"])[0] == 1.0

    def test_newlines_and_tabs_in_answers_are_cleaned(self):
        assert vqa_accuracy("yes", ["yes\n", "\tyes"] * 5)[0] == 1.0

    @pytest.mark.parametrize("prediction", ["red\nwine", "red\twine"])
    def test_newlines_and_tabs_inside_are_spaces(self, prediction):
        # Unanimous answers skip the processing: only the newline/tab cleaning makes these equal.
        assert vqa_accuracy(prediction, ["red wine"] * 10) == (1.0, 10)

    def test_short_lists_cap_below_one_as_official(self):
        assert vqa_accuracy("cat", ["cat", "cat"])[0] == pytest.approx(1 / 3)

    def test_one_answer_is_refused(self):
        with pytest.raises(ValueError, match=r"^the official accuracy needs at least two human answers$"):
            vqa_accuracy("cat", ["cat"])


class TestSingleAnswer:
    @pytest.mark.parametrize(
        ("prediction", "answer", "expected"),
        [
            ("Yes.", "yes", 1.0),  # Path-VQA yes/no
            ("no", "yes", 0.0),
            ("the stomach", "Stomach", 1.0),  # Path-VQA open question
            ("Three", "3", 1.0),
            ("liver", "stomach", 0.0),
        ],
    )
    def test_processed_equality(self, prediction, answer, expected):
        assert single_answer_accuracy(prediction, answer) == expected
