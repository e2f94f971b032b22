"""The contract holds for every value: finite params in, and a finite reward or null-with-a-reason out."""

import math
import typing

import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from proto.models import ScoreResponse
from services.clip_cider.scorer import ClipCiderScorer
from services.llm_judge.scorer import LlmJudgeScorer
from services.math_equiv.scorer import MathEquivScorer
from services.regex_format.scorer import RegexFormatScorer
from services.vqa_accuracy.scorer import VqaAccuracyScorer
from tests.services.common.toy import make_app

PARAMS_MODELS = [s.params_model for s in
                 (ClipCiderScorer, LlmJudgeScorer, MathEquivScorer, RegexFormatScorer, VqaAccuracyScorer)]


def _numeric_fields(model) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        args = typing.get_args(field.annotation) or (field.annotation,)
        if any(a in (float, int) or (typing.get_origin(a) is typing.Annotated and
               typing.get_args(a)[0] in (float, int)) for a in args):
            out.append(name)
    return out


NUMERIC = [(m, f) for m in PARAMS_MODELS for f in _numeric_fields(m)]


def test_the_services_declare_numeric_params_at_all():
    assert {f for _, f in NUMERIC} >= {"w_clip", "w_cider", "cider_cap", "threshold"}


@pytest.mark.parametrize("model,field", NUMERIC, ids=[f"{m.__name__}.{f}" for m, f in NUMERIC])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, True, False, "0.5"])
def test_every_numeric_param_refuses_non_finite_and_non_numbers(model, field, value):
    with pytest.raises(ValidationError):
        model.model_validate({field: value})


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "true", "1e999"])
def test_non_finite_json_literals_are_a_422_naming_the_param(literal):
    with TestClient(make_app()) as client:
        resp = client.post("/v1/score", content=f'{{"items":[{{"completion":"len:ab"}}],'
                           f'"params":{{"scale":{literal}}}}}', headers={"content-type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["type"] == "validation_error" and "params.scale" in resp.text


def test_a_reward_that_overflows_is_null_with_status_error_never_null_with_ok():
    with TestClient(make_app()) as client:
        resp = client.post("/v1/score", json={"items": [{"completion": "len:abc"}, {"completion": "len:a"}],
                                              "params": {"scale": 1e308}})
    body = ScoreResponse.model_validate_json(resp.content)
    assert body.rewards[0] is None and body.details[0].status == "error"
    assert "non_finite" in body.details[0].reason
    assert body.rewards[1] == 1e308 and body.details[1].status == "ok"
