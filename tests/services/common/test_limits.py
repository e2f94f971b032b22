"""Limits before work: the JSON pre-scan that refuses huge item counts before any object is built."""

import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.models import ScoreResponse
from services.common import app as app_module
from services.common.limits import count_json_values
from tests.helpers import serve_app
from tests.services.common.toy import make_app

# Text full of the characters a naive scanner would miscount: quotes, backslashes, braces, commas.
_TEXT = st.text(alphabet=st.sampled_from(list('ab"\\{}[],:\u00e9\n')), max_size=12)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=30,
)


def _reference_count(value) -> int:
    """Containers plus the separators between their members, counted on the parsed structure."""
    if isinstance(value, dict):
        return 1 + max(len(value) - 1, 0) + sum(_reference_count(v) for v in value.values())
    if isinstance(value, list):
        return 1 + max(len(value) - 1, 0) + sum(_reference_count(v) for v in value)
    return 0


@settings(max_examples=300, deadline=None)
@given(doc=_JSON, ascii_only=st.booleans(), spaced=st.booleans())
def test_the_pre_scan_counts_exactly_what_the_parsed_document_holds(doc, ascii_only, spaced):
    raw = json.dumps(doc, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":"))
    assert count_json_values(raw.encode()) == _reference_count(doc)


@pytest.fixture(scope="module")
def url():
    with serve_app(make_app(max_batch=64, max_body_bytes=32 * 1024 * 1024)) as base:
        yield base


def test_a_million_items_get_413_without_parsing_the_body(url, monkeypatch):
    parsed = []
    real = app_module.ScoreRequest.model_validate_json
    monkeypatch.setattr(app_module.ScoreRequest, "model_validate_json",
                        lambda raw, *a, **k: parsed.append(len(raw)) or real(raw, *a, **k))
    body = b'{"items":[' + b",".join([b'{"completion":""}'] * 1_000_000) + b"]}"
    resp = httpx.post(f"{url}/v1/score", content=body, headers={"content-type": "application/json"},
                      timeout=60)
    assert resp.status_code == 413
    err = resp.json()["error"]
    assert err["type"] == "payload_too_large" and "split the request" in err["message"]
    assert parsed == []  # refused by the pre-scan, before pydantic built a single object


def test_a_request_within_max_batch_is_not_refused_by_the_pre_scan(url):
    # Rich items: choices, several references, meta; still far under the per-item allowance.
    item = {"completion": "{[,]}" * 100, "reference": ["a", "b", "c"], "choices": ["w", "x", "y", "z"],
            "meta": {"answer_type": "number", "tags": [1, 2, 3]}}
    resp = httpx.post(f"{url}/v1/score", json={"items": [item] * 64}, timeout=60)
    assert resp.status_code == 200, resp.text
    assert len(ScoreResponse.model_validate_json(resp.content).rewards) == 64


def test_one_million_values_hidden_in_a_single_item_are_refused_too(url):
    body = json.dumps({"items": [{"completion": "x", "meta": {"junk": [0] * 1_000_000}}]})
    resp = httpx.post(f"{url}/v1/score", content=body, headers={"content-type": "application/json"},
                      timeout=60)
    assert resp.status_code == 413


def test_the_default_body_limit_fits_the_smallest_pod_in_the_manifests():
    import yaml

    from services.common.settings import ServiceSettings
    from tests.helpers import ROOT

    units = {"Mi": 2**20, "Gi": 2**30}
    smallest = min(
        int(limit[:-2]) * units[limit[-2:]]
        for path in (ROOT / "deploy" / "k8s" / "base").glob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
        if (limit := container.get("resources", {}).get("limits", {}).get("memory"))
    )
    s = ServiceSettings()
    # Parsing costs about 4x the body, max_concurrency requests parse at once, and the process
    # itself needs the other half of the pod.
    assert 4 * s.max_body_bytes * s.max_concurrency <= smallest // 2


def test_closing_the_gate_answers_the_queue_and_lets_the_scoring_finish():
    import asyncio

    from services.common.errors import ServiceError
    from services.common.limits import Gate

    async def go():
        gate = Gate(concurrency=1, queue=8, retry_after_s=3)
        release = asyncio.Event()

        async def hold():
            async with gate.slot():
                await release.wait()
                return "scored"

        async def queued():
            async with gate.slot():
                return "scored"

        first = asyncio.create_task(hold())
        await asyncio.sleep(0)
        waiting = [asyncio.create_task(queued()) for _ in range(3)]
        cancelled = asyncio.create_task(queued())
        while gate.waiting < 4:  # no I/O here: each turn of the loop moves every task on
            await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        gate.close()
        refused = await asyncio.gather(*waiting, return_exceptions=True)
        release.set()
        return await first, refused, cancelled.cancelled(), gate

    first, refused, was_cancelled, gate = asyncio.run(go())
    assert first == "scored" and was_cancelled
    assert all(isinstance(r, ServiceError) and r.retry_after == 3 and r.type.status_code == 503 for r in refused)
    assert gate.admitted == 0 and gate.active == 0 and gate._sem._value == 1  # nothing leaked
