"""The served OpenAPI of every service is the contract: declared, typed, and what the service answers.

The declaration tests read each service's /openapi.json; the fuzz test lets Schemathesis send bodies
generated from it (valid and invalid) and checks every answer: no 5xx, no undocumented status,
content types and bodies as declared. Examples are few and the schemas small, so the five services
together take well under a minute.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.generation import GenerationMode

from services.common.app import create_app
from tests.helpers import serve_app
from tests.services.llm_judge.fake_openai import FakeOpenAI

SERVICES = ["regex_format", "vqa_accuracy", "math_equiv", "clip_cider", "llm_judge"]
ERROR_STATUSES = {"413", "422", "500", "502", "503"}
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance, checks.response_headers_conformance]


@contextlib.contextmanager
def _service(name: str, tmp_path) -> Iterator[tuple[str, type]]:
    """Serve one service with test settings (tiny CLIP, fake judge upstream); yield (url, params model)."""
    with contextlib.ExitStack() as stack:
        if name == "regex_format":
            from services.regex_format.scorer import RegexFormatScorer as Scorer
            from services.regex_format.settings import RegexFormatSettings
            s = RegexFormatSettings()
        elif name == "vqa_accuracy":
            from services.vqa_accuracy.scorer import VqaAccuracyScorer as Scorer
            from services.vqa_accuracy.settings import VqaAccuracySettings
            s = VqaAccuracySettings()
        elif name == "math_equiv":
            from services.math_equiv.scorer import MathEquivScorer as Scorer
            from services.math_equiv.settings import MathEquivSettings
            s = MathEquivSettings(workers=1, time_limit_s=2.0, max_batch=64)
        elif name == "clip_cider":
            from services.clip_cider.scorer import ClipCiderScorer as Scorer
            from tests.services.clip_cider.support import settings_for, write_tiny_config
            s = settings_for(write_tiny_config(tmp_path), image_root=tmp_path)
        else:
            from services.llm_judge.scorer import LlmJudgeScorer as Scorer
            from tests.services.llm_judge.support import settings_for as judge_settings
            fake = FakeOpenAI()
            fake.base_url = stack.enter_context(serve_app(fake.app)) + "/v1"
            s = judge_settings(fake)
        url = stack.enter_context(serve_app(create_app(Scorer(s), s)))
        yield url, Scorer.params_model


@pytest.fixture(scope="module", params=SERVICES)
def service(request, tmp_path_factory):
    with _service(request.param, tmp_path_factory.mktemp(request.param)) as served:
        yield served


def test_score_declares_its_typed_body_and_every_error(service):
    url, params_model = service
    spec = httpx.get(f"{url}/openapi.json").json()
    score = spec["paths"]["/v1/score"]["post"]
    ref = score["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert body["required"] == ["items"]
    params = body["properties"]["params"]
    assert params["$ref"].endswith(f"/{params_model.__name__}")
    assert set(spec["components"]["schemas"][params_model.__name__]["properties"]) == \
        set(params_model.model_fields)
    assert set(score["responses"]) >= ERROR_STATUSES
    for status in ERROR_STATUSES:
        content = score["responses"][status]["content"]["application/json"]["schema"]
        assert content["$ref"].endswith("/ErrorResponse"), status
    assert set(spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert httpx.get(f"{url}/metrics").headers["content-type"].startswith("text/plain")


def test_a_wrong_method_is_405_with_allow_and_its_own_type(service):
    url, _ = service
    resp = httpx.get(f"{url}/v1/score")
    assert resp.status_code == 405 and resp.headers["allow"] == "POST"
    assert resp.json()["error"]["type"] == "method_not_allowed"


def _fuzz(operation, mode: GenerationMode):
    extra = [checks.negative_data_rejection] if mode is GenerationMode.NEGATIVE else []

    @settings(max_examples=15 if operation.body else 3, deadline=None, database=None,
              derandomize=True, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        case.call_and_validate(checks=CHECKS + extra)

    return fuzz


@pytest.mark.slow
def test_schemathesis_finds_no_5xx_and_no_answer_outside_the_contract(service):
    url, _ = service
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in list(GenerationMode) if operation.body else [GenerationMode.POSITIVE]:
            _fuzz(operation, mode)()
