"""VqaAccuracyScorer without HTTP: modes, answer extraction, params, defaults and unscorable items."""

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from proto.models import ItemStatus, ScoreItem
from services.common.scoring import Batch
from services.vqa_accuracy.scorer import VqaAccuracyParams, VqaAccuracyScorer
from services.vqa_accuracy.settings import VqaAccuracySettings
from tests.services.vqa_accuracy.golden import GOLDEN


@pytest.fixture
def scorer():
    s = VqaAccuracyScorer(VqaAccuracySettings())
    s.load()
    return s


def score(scorer, items, **params):
    return scorer.score(Batch(items=items, images={}, params=VqaAccuracyParams(**params)))


def item(completion, reference):
    return ScoreItem(completion=completion, reference=reference)


@pytest.mark.parametrize(("mode", "column"), [("vqa", "vqa_accuracy"), ("anls", "anls")])
def test_golden_through_the_scorer(scorer, mode, column):
    # The golden prediction is the whole answer: wrapping it in the tag must not change it.
    items = [item(f"<think>hm</think><answer>{c['prediction']}</answer>", c["answers"]) for c in GOLDEN]
    results = score(scorer, items, mode=mode, references="annotators")
    assert [r.status for r in results] == [ItemStatus.ok] * len(GOLDEN)
    got = [r.reward for r in results]
    assert got == pytest.approx([c[column] for c in GOLDEN], abs=1e-9)


def test_default_mode_is_vqa(scorer):
    [r] = score(scorer, [item("Two", ["2"] * 9 + ["two dogs"])])
    assert r.reward == 1.0
    assert r.parts == {"tagged": 0.0, "matches": 9.0, "accepted": 10.0}


class TestAListIsAcceptedAnswersUnlessItIsAnnotators:
    """A list reference is a set of accepted answers by default; `references: annotators` asks
    for the official VQA formula, and each result's parts say which reading scored it."""

    @pytest.mark.parametrize("mode", ["vqa", "exact", "anls", "partial", "fuzzy"])
    @pytest.mark.parametrize(("answer", "refs"), [("Ha Noi", ["Hà Nội", "Ha Noi"]),
                                                  ("Paris", ["Paris", "Paris", "Paris"])])
    def test_an_exact_match_on_any_accepted_answer_is_full_credit(self, scorer, mode, answer, refs):
        [r] = score(scorer, [item(f"<answer>{answer}</answer>", refs)], mode=mode)
        assert r.reward == 1.0
        assert r.parts["accepted"] == len(refs) and "annotators" not in r.parts

    def test_the_same_lists_as_annotators_answers_take_the_official_formula(self, scorer):
        items = [item("<answer>Ha Noi</answer>", ["Hà Nội", "Ha Noi"]),
                 item("<answer>Paris</answer>", ["Paris", "Paris", "Paris"])]
        results = score(scorer, items, mode="vqa", references="annotators")
        assert [r.reward for r in results] == pytest.approx([1 / 6, 2 / 3])
        assert [r.parts["annotators"] for r in results] == [2.0, 3.0]
        assert all("accepted" not in r.parts for r in results)

    def test_accepted_answers_go_through_the_official_answer_processing(self, scorer):
        [hit, miss] = score(scorer, [item("Two!", ["3", "two"]), item("dog", ["cat", "2"])], mode="vqa")
        assert (hit.reward, hit.parts["matches"]) == (1.0, 1.0)
        assert (miss.reward, miss.parts["matches"]) == (0.0, 0.0)


def test_settings_choose_the_default_mode_and_threshold():
    s = VqaAccuracyScorer(VqaAccuracySettings(default_mode="fuzzy", default_threshold=0.95))
    [r] = score(s, [item("colour", "color")])
    assert r.reward == 0.0
    assert r.parts["similarity"] > 0.9


def test_settings_read_their_env_prefix(monkeypatch):
    monkeypatch.setenv("VQA_ACCURACY_DEFAULT_MODE", "exact")
    monkeypatch.setenv("VQA_ACCURACY_DEFAULT_ANSWER_TAG", "SOLUTION")
    s = VqaAccuracySettings()
    assert (s.default_mode, s.default_answer_tag) == ("exact", "SOLUTION")


def test_params_override_settings(scorer):
    [r] = score(scorer, [item("<SOLUTION>Màu đỏ.</SOLUTION>", "màu đỏ")], mode="exact",
                answer_tag="SOLUTION")
    assert r.reward == 1.0
    assert r.parts["tagged"] == 1.0


def test_untagged_completion_is_scored_whole_and_counted(scorer):
    registry = CollectorRegistry()
    scorer.register_metrics(registry)
    [r] = score(scorer, [item("  yes \n", "yes")])
    assert (r.reward, r.parts["tagged"]) == (1.0, 0.0)
    assert registry.get_sample_value("vqa_accuracy_untagged_answers_total") == 1.0
    assert registry.get_sample_value("vqa_accuracy_items_by_mode_total", {"mode": "vqa"}) == 1.0


@pytest.mark.parametrize(
    ("completion", "reference", "expected"),
    [
        ("<answer>Yes</answer>", "yes", 1.0),  # Path-VQA closed question
        ("<answer>No.</answer>", ["yes"], 0.0),
        ("<answer>the stomach</answer>", "stomach", 1.0),  # Path-VQA open question
        ("<answer>hepatocytes</answer>", "stomach", 0.0),
    ],
)
def test_path_vqa_single_answers(scorer, completion, reference, expected):
    [r] = score(scorer, [item(completion, reference)])
    assert r.reward == expected


def test_partial_and_fuzzy_modes(scorer):
    items = [item("<answer>một con mèo màu đen</answer>", "con mèo"), item("<answer>xyz</answer>", "con mèo")]
    assert [r.reward for r in score(scorer, items, mode="partial")] == [0.5, 0.0]
    fuzzy = score(scorer, [item("colour", "color")], mode="fuzzy", threshold=0.5)
    assert fuzzy[0].reward == pytest.approx(10 / 11)


@pytest.mark.parametrize("reference", [None, []])
def test_missing_reference_is_unscorable_not_zero(scorer, reference):
    [r] = score(scorer, [item("yes", reference)])
    assert r.reward is None
    assert r.status == ItemStatus.unscorable
    assert "reference" in r.reason and "accepted answers" in r.reason and "annotators" in r.reason


def test_a_bad_item_does_not_sink_the_batch(scorer):
    results = score(scorer, [item("yes", None), item("yes", "yes")], mode="exact")
    assert [r.reward for r in results] == [None, 1.0]


@pytest.mark.parametrize(
    "params",
    [{"mode": "bleu"}, {"threshold": 1.5}, {"answer_tag": "<answer>"}, {"temperature": 0.1},
     {"references": "annotator"}],
)
def test_bad_params_are_refused(params):
    with pytest.raises(ValidationError):
        VqaAccuracyParams.model_validate(params)


def test_config_names_what_decides_scores(scorer):
    cfg = scorer.config()
    assert cfg["default_mode"] == "vqa" and cfg["default_references"] == "accepted"
    assert cfg["default_threshold"] == 0.5
    assert "rapidfuzz" in cfg
