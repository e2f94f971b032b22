"""Where Python 3 and the official Python 2 evaluation part ways (digits), and ANLS at exactly 0.5.

The official vqaEval.py compiles its digit patterns without re.UNICODE, so under Python 2 `\\d`
is [0-9]; Python 3's `\\d` would match Arabic-Indic and other Unicode digits. The expected
values below are what the Python 2 code does, worked by hand from its two rules and checked
once with Python 2.7.18 running the official two patterns on these strings.
"""

import pytest

from proto.models import ScoreItem
from services.common.scoring import Batch
from services.vqa_accuracy.metrics import anls
from services.vqa_accuracy.official import process_punctuation, vqa_accuracy
from services.vqa_accuracy.scorer import VqaAccuracyParams, VqaAccuracyScorer
from services.vqa_accuracy.settings import VqaAccuracySettings


class TestAsciiDigits:
    def test_a_comma_between_non_ascii_digits_is_not_a_digit_group(self):
        # Python 2: no [0-9],[0-9] group, the comma touches no space -> it becomes a space.
        assert process_punctuation("٣,٣") == "٣ ٣"
        assert process_punctuation("3,3") == "33"

    def test_a_period_before_a_non_ascii_digit_is_removed(self):
        # Python 2: (?!\d) sees no digit in "٥", so the period goes.
        assert process_punctuation("٣.٥") == "٣٥"
        assert process_punctuation("3.5") == "3.5"

    def test_the_comma_rule_looks_at_ascii_digits_anywhere(self):
        # An ASCII group elsewhere still deletes every mark, the official quirk.
        assert process_punctuation("1,000 ٣/٣") == "1000 ٣٣"

    def test_through_the_accuracy(self):
        answers = ["٣ ٣"] * 4 + ["x"] * 6
        assert vqa_accuracy("٣,٣", answers)[0] == 1.0
        assert vqa_accuracy("٣٣", answers)[0] == 0.0


def _one(completion, reference, **params):
    scorer = VqaAccuracyScorer(VqaAccuracySettings())
    item = ScoreItem(completion=completion, reference=reference)
    return scorer.score(Batch([item], {}, VqaAccuracyParams(mode="anls", **params)))[0]


class TestAnlsBoundary:
    # "ab" vs "ac": one edit in two characters, similarity exactly 0.5.
    def test_paper_definition_is_the_default(self):
        assert anls("ab", ["ac"]) == 0.0
        assert _one("ab", ["ac"]).reward == 0.0

    def test_docvqa_script_keeps_the_boundary(self):
        assert anls("ab", ["ac"], boundary="docvqa") == 0.5
        assert _one("ab", ["ac"], anls_boundary="docvqa").reward == 0.5

    @pytest.mark.parametrize(("prediction", "reference"), [("abc", "abd"), ("abc", "xyz"), ("a", "a")])
    def test_both_agree_away_from_the_boundary(self, prediction, reference):
        assert anls(prediction, [reference]) == anls(prediction, [reference], boundary="docvqa")

    def test_custom_threshold_boundary(self):
        # "abcd" vs "abxy": similarity 0.5; at threshold 0.5 only docvqa keeps it, at 0.4 both do.
        assert anls("abcd", ["abxy"], threshold=0.5, boundary="docvqa") == 0.5
        assert anls("abcd", ["abxy"], threshold=0.4) == 0.5

    def test_unknown_boundary_is_refused(self):
        with pytest.raises(ValueError, match="anls_boundary"):
            VqaAccuracyParams(anls_boundary="leaderboard")
