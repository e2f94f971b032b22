"""clip_cider keeps the reward contract for extreme but finite weights: finite, or null with a reason."""

import math

import pytest
from starlette.testclient import TestClient

from proto.models import ScoreResponse
from services.clip_cider.scorer import ClipCiderScorer
from services.common.app import create_app
from tests.services.clip_cider.support import b64, encode, image
from tests.services.clip_cider.support import settings_for as clip_settings

WEIGHTS = [{"w_clip": 1e308}, {"w_clip": 1.7e308, "w_cider": 1.7e308, "cider_cap": 1e-300},
           {"w_cider": 1e308, "cider_cap": 5e-324}, {"w_clip": 5e-324, "w_cider": 0}]


@pytest.mark.parametrize("params", WEIGHTS)
def test_extreme_finite_weights_give_a_finite_reward_or_null_with_a_reason(tiny_config, params):
    settings = clip_settings(tiny_config)
    images = {str(s): b64(encode(image(s))) for s in range(4)}
    items = [{"completion": f"<explain>a photo of noise {s}</explain>", "image_id": str(s),
              "reference": ["a photo of noise", "random pixels"]} for s in range(4)]
    with TestClient(create_app(ClipCiderScorer(settings), settings)) as client:
        resp = client.post("/v1/score", json={"items": items, "images": images, "params": params})
    assert resp.status_code == 200, resp.text
    body = ScoreResponse.model_validate_json(resp.content)
    for reward, detail in zip(body.rewards, body.details, strict=True):
        if reward is None:
            assert detail.status != "ok" and detail.reason, detail
        else:
            assert math.isfinite(reward) and detail.status == "ok"
