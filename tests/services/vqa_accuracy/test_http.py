"""vqa_accuracy over real HTTP (uvicorn on 127.0.0.1) through RewardClient, and through inproc://."""


import pytest

from proto.client import RewardRequestError
from proto.models import ItemStatus
from services.common.app import create_app
from services.vqa_accuracy.scorer import VqaAccuracyScorer
from services.vqa_accuracy.settings import VqaAccuracySettings
from tests.helpers import serve_app, with_client
from tests.services.vqa_accuracy.golden import GOLDEN


@pytest.fixture(scope="module")
def url():
    settings = VqaAccuracySettings()
    with serve_app(create_app(VqaAccuracyScorer(settings), settings)) as base:
        yield base


def run(url, coro_fn):
    return with_client(url, coro_fn, deadline_s=30)


def golden_items(n):
    return [
        {"completion": f"<answer>{c['prediction']}</answer>", "reference": c["answers"]}
        for c in GOLDEN[:n]
    ]


@pytest.mark.parametrize(("mode", "column"), [("vqa", "vqa_accuracy"), ("anls", "anls")])
def test_batch_of_256_matches_golden_in_order(url, mode, column):
    resp = run(url, lambda c: c.score(golden_items(256), params={"mode": mode, "references": "annotators"}))
    assert resp.service == "vqa_accuracy"
    assert resp.rewards == pytest.approx([c[column] for c in GOLDEN[:256]], abs=1e-9)
    assert {d.status for d in resp.details} == {ItemStatus.ok}


def test_unscorable_item_comes_back_null(url):
    items = [{"completion": "yes"}, {"completion": "Màu đỏ", "reference": ["màu đỏ"]}]
    resp = run(url, lambda c: c.score(items, params={"mode": "exact"}))
    assert resp.rewards == [None, 1.0]
    assert resp.details[0].status == ItemStatus.unscorable


def test_unknown_param_is_a_422_naming_it(url):
    with pytest.raises(RewardRequestError) as err:
        run(url, lambda c: c.score([{"completion": "x", "reference": "x"}], params={"modes": "vqa"}))
    assert err.value.status == 422
    assert "modes" in err.value.message


def test_info_publishes_the_params_schema(url):
    info = run(url, lambda c: c.info())
    assert info.name == "vqa_accuracy"
    assert info.score_range == (0.0, 1.0)
    assert set(info.params_schema["properties"]) == {"mode", "answer_tag", "threshold", "anls_boundary",
                                                     "references"}
    assert "accepted" in info.params_schema["properties"]["references"]["description"]
    assert info.config["default_mode"] == "vqa" and info.config["default_references"] == "accepted"


def test_inproc_serves_main_app_with_the_same_scores():
    resp = run("inproc://vqa_accuracy",
               lambda c: c.score(golden_items(20), params={"mode": "vqa", "references": "annotators"}))
    assert resp.rewards == pytest.approx([c["vqa_accuracy"] for c in GOLDEN[:20]], abs=1e-9)
