"""Blank means none at the gateway: a label that is "", white space, [], a list of blanks or JSON null
gives the configured fallback with unscored = 1 on the OpenRLHF and slime routes, and null with the
reason on /v1/score; the format reward, which needs no reference, still counts.

OpenRLHF sends "" for every label when --label_key is not set (openrlhf/datasets/prompts_dataset.py,
`preprocess_data`, 0.11.2); tests/integrations/test_openrlhf.py drives that code itself.
"""

from __future__ import annotations

import httpx
import pytest

from tests.services.gateway import payloads as p
from tests.services.gateway.support import gateway, rewards, services

BLANKS = ["", "  \n", [], ["", " "], None]
FALLBACK = -1.0


@pytest.fixture(scope="module")
def gw():
    with services() as svc, gateway(rewards(svc), fallback=FALLBACK) as (url, _):
        yield url


@pytest.mark.parametrize("label", BLANKS, ids=repr)
def test_openrlhf_blank_label_is_the_fallback_flagged(gw, label):
    body = {**p.openrlhf_single(), "labels": [label]}
    out = httpx.post(gw + "/openrlhf/get_reward", json=body, timeout=30).json()
    assert out["rewards"] == [0.5 * 1.0 + FALLBACK]
    assert out["extra_logs"]["answer"] == [FALLBACK] and out["extra_logs"]["unscored"] == [1.0]


@pytest.mark.parametrize("label", BLANKS, ids=repr)
def test_slime_blank_label_is_the_fallback_flagged(gw, label):
    out = httpx.post(gw + "/slime/reward", json=p.slime_single(label=label), timeout=30).json()
    assert out == {"score": 0.5 * 1.0 + FALLBACK, "format": 1.0, "answer": FALLBACK, "unscored": 1}


def test_v1_score_blank_reference_is_null_with_the_reason(gw):
    items = [{"completion": p.RESPONSE, "reference": r} for r in BLANKS] + [{"completion": p.RESPONSE,
                                                                              "reference": "2"}]
    out = httpx.post(gw + "/v1/score", json={"items": items}, timeout=30).json()
    assert out["rewards"] == [None] * len(BLANKS) + [1.5]
    for detail in out["details"][:-1]:
        assert detail["status"] == "unscorable" and "answer: no reference" in detail["reason"]
        assert detail["parts"]["format"] == 1.0
