"""Blank means none, in every service: "", white space, [], a list of blanks and JSON null are no
reference. A service that compares against one answers null, unscorable, with a reason; one that
needs none (regex_format) scores as if none was sent. Over each service's real app (TestClient)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.common.app import create_app
from tests.helpers import serve_app

BLANKS = ["", "   \t", [], ["", " "], None]  # None travels as JSON null


@contextlib.contextmanager
def regex_format() -> Iterator[object]:
    from services.regex_format.scorer import RegexFormatScorer
    from services.regex_format.settings import RegexFormatSettings

    settings = RegexFormatSettings()
    yield create_app(RegexFormatScorer(settings), settings)


@contextlib.contextmanager
def vqa_accuracy() -> Iterator[object]:
    from services.vqa_accuracy.scorer import VqaAccuracyScorer
    from services.vqa_accuracy.settings import VqaAccuracySettings

    settings = VqaAccuracySettings()
    yield create_app(VqaAccuracyScorer(settings), settings)


@contextlib.contextmanager
def math_equiv() -> Iterator[object]:
    from services.math_equiv.scorer import MathEquivScorer
    from services.math_equiv.settings import MathEquivSettings

    settings = MathEquivSettings(workers=1, time_limit_s=10.0)
    yield create_app(MathEquivScorer(settings), settings)


@contextlib.contextmanager
def clip_cider(tmp_dir) -> Iterator[object]:
    from services.clip_cider.scorer import ClipCiderScorer
    from tests.services.clip_cider.support import settings_for, write_tiny_config

    settings = settings_for(write_tiny_config(tmp_dir))
    yield create_app(ClipCiderScorer(settings), settings)


@contextlib.contextmanager
def llm_judge() -> Iterator[object]:
    from services.llm_judge.scorer import LlmJudgeScorer
    from tests.services.llm_judge.fake_openai import FakeOpenAI
    from tests.services.llm_judge.support import settings_for

    fake = FakeOpenAI()
    with serve_app(fake.app) as url:
        fake.base_url = f"{url}/v1"
        settings = settings_for(fake)
        app = create_app(LlmJudgeScorer(settings), settings)
        app.state.fake_upstream = fake
        yield app


# (service, completion, params, a real reference: the control that is scored)
NEEDS_REFERENCE = [
    (vqa_accuracy, "<answer>yes</answer>", {"mode": "exact", "answer_tag": "answer"}, "yes"),
    (math_equiv, "<answer>2</answer>", {}, "2"),
    (clip_cider, "<explain>a dog runs on the beach</explain>", {}, "a dog runs on the beach"),
    (llm_judge, "<think>granulomas</think><answer>yes</answer>", {}, "yes"),
]


def _score(app, completion: str, params: dict, references: list) -> dict:
    body = {"items": [{"completion": completion, "reference": r} for r in references], "params": params}
    with TestClient(app) as client:
        resp = client.post("/v1/score", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.parametrize(("service", "completion", "params", "real"), NEEDS_REFERENCE,
                         ids=[s[0].__name__ for s in NEEDS_REFERENCE])
def test_a_blank_reference_is_null_and_unscorable_with_a_reason(service, completion, params, real, tmp_path):
    with service(*([tmp_path] if service is clip_cider else [])) as app:
        out = _score(app, completion, params, [*BLANKS, real])
        upstream = getattr(app.state, "fake_upstream", None)
    assert out["rewards"][-1] is not None  # the control: a real reference is scored
    for blank, reward, detail in zip(BLANKS, out["rewards"], out["details"], strict=False):
        assert reward is None, f"{service.__name__} scored reference {blank!r} as {reward}"
        assert detail["status"] == "unscorable" and "reference" in detail["reason"]
    if upstream is not None:
        assert upstream.calls == 1  # only the control reached the judge


def test_regex_format_needs_no_reference_and_a_blank_one_changes_nothing():
    completion = "<think>a</think><answer>b</answer>"
    with regex_format() as app:
        out = _score(app, completion, {"mode": "think_answer"}, [*BLANKS, "b"])
    assert out["rewards"] == [1.0] * (len(BLANKS) + 1)
    assert {d["status"] for d in out["details"]} == {"ok"}
