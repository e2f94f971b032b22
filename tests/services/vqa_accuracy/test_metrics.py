"""ANLS against the golden file; exact, partial and fuzzy modes and the text helpers on literal cases."""

import pytest

from services.vqa_accuracy.metrics import anls, exact_match, fuzzy_score, partial_credit
from services.vqa_accuracy.normalize import extract_answer, normalize_text
from tests.services.vqa_accuracy.golden import GOLDEN, GOLDEN_IDS


@pytest.mark.parametrize("case", GOLDEN, ids=GOLDEN_IDS)
def test_golden_anls(case):
    assert anls(case["prediction"], case["answers"]) == pytest.approx(case["anls"], abs=1e-9)


class TestAnls:
    def test_similarity_at_the_threshold_scores_zero(self):
        # "ab" vs "ac": distance 1 of 2, NL 0.5; the published rule keeps only NL < 0.5.
        assert anls("ab", ["ac"]) == 0.0

    def test_lower_threshold_admits_weaker_matches(self):
        assert anls("ab", ["ac"], threshold=0.4) == 0.5

    def test_best_reference_wins(self):
        assert anls("Hello  World", ["xyz", "hello world"]) == 1.0

    def test_both_empty_is_identical(self):
        assert anls("", [""]) == 1.0

    def test_docvqa_boundary_still_cuts_below_the_threshold(self):
        # "abcd" vs "axyz": similarity 0.25 < 0.5, zero under the leaderboard script's rule too.
        assert anls("abcd", ["axyz"], boundary="docvqa") == 0.0

    def test_case_is_lowered_not_raised(self):
        # ANLS lower-cases both sides (the DocVQA script's `.lower()`): "ß" stays one letter,
        # while upper-casing would make it "SS" and equal to "ss".
        assert anls("ß", ["SS"]) == 0.0


class TestNormalize:
    def test_vietnamese_diacritics_survive(self):
        assert normalize_text("Màu ĐỎ.") == "màu đỏ"
        assert normalize_text("mau do") != normalize_text("màu đỏ")

    def test_decomposed_and_composed_forms_are_equal(self):
        decomposed = "ca\u0300 phe\u0302"  # "cà phê" with combining marks
        assert normalize_text(decomposed) == normalize_text("cà phê")

    def test_english_articles_and_punctuation_go(self):
        assert normalize_text("The  black, and-white  cat!") == "black andwhite cat"

    def test_casefold_not_just_lower(self):
        assert normalize_text("STRASSE") == normalize_text("straße")


class TestExtractAnswer:
    def test_last_tag_wins(self):
        text = "<answer>3</answer> wait <answer>\n 4 \n</answer>"
        assert extract_answer(text, "answer") == ("4", True)

    def test_no_tag_means_whole_completion(self):
        assert extract_answer("  yes \n", "answer") == ("yes", False)

    def test_custom_tag(self):
        assert extract_answer("<SOLUTION>no</SOLUTION>", "SOLUTION") == ("no", True)


class TestExact:
    @pytest.mark.parametrize(
        ("prediction", "references", "expected"),
        [
            ("The Eiffel Tower.", ["eiffel tower"], 1.0),
            ("Màu đỏ", ["màu đỏ", "đỏ"], 1.0),
            ("mau do", ["màu đỏ"], 0.0),
            ("con chó", ["con mèo"], 0.0),
            ("two", ["2"], 0.0),  # no number-word mapping outside the official mode
        ],
    )
    def test_cases(self, prediction, references, expected):
        assert exact_match(prediction, references) == expected


class TestPartial:
    @pytest.mark.parametrize(
        ("prediction", "references", "expected"),
        [
            ("Con mèo đen.", ["con mèo đen"], (1.0, 1.0)),
            ("một con mèo màu đen", ["con mèo"], (0.5, 1.0)),
            ("mèo", ["con mèo đen nhỏ"], (0.0, 0.25)),
            ("con mèo", ["con mèo đen nhỏ"], (0.5, 0.5)),
            ("a dog", ["cat"], (0.0, 0.0)),
        ],
    )
    def test_cases(self, prediction, references, expected):
        assert partial_credit(prediction, references) == expected

    def test_best_reference_wins(self):
        assert partial_credit("bánh mì", ["phở", "Bánh mì!"]) == (1.0, 1.0)

    def test_empty_reference_gives_no_half_credit(self):
        assert partial_credit("anything", ["the"]) == (0.0, 0.0)


class TestFuzzy:
    def test_similarity_is_rapidfuzz_ratio_of_normalized_text(self):
        score, sim = fuzzy_score("colour", ["color"], threshold=0.5)
        assert sim == pytest.approx(2 * 5 / 11)
        assert score == sim

    def test_a_similarity_equal_to_the_threshold_is_kept(self):
        assert fuzzy_score("Red", ["red"], threshold=1.0) == (1.0, 1.0)
        assert fuzzy_score("colour", ["color"], threshold=10 / 11) == (10 / 11, 10 / 11)

    def test_below_threshold_is_zero(self):
        score, sim = fuzzy_score("colour", ["color"], threshold=0.95)
        assert score == 0.0
        assert sim > 0.9

    def test_vietnamese_diacritics_count_as_differences(self):
        _, sim = fuzzy_score("mau do", ["màu đỏ"], threshold=0.0)
        assert 0.0 < sim < 1.0
