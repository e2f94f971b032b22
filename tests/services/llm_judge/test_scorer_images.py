"""The judge with images (sent once, checked before a call) and its metrics."""

import base64
import io

import pytest
from PIL import Image
from prometheus_client import CollectorRegistry

from proto.models import ImageData, ItemStatus
from tests.services.llm_judge.fake_openai import chat, http_error
from tests.services.llm_judge.support import item, score, scorer_for


def png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, format="PNG")
    return buf.getvalue()


class TestImages:
    def test_image_is_sent_as_a_data_uri_and_keys_the_cache(self, fake, tmp_path):
        (tmp_path / "b.png").write_bytes(png((0, 0, 255)))
        red = base64.b64encode(png((255, 0, 0))).decode()
        images = {"r": ImageData(b64=red), "b": ImageData(path="b.png")}
        scorer = scorer_for(fake, send_image=True, image_root=tmp_path)
        results = score(scorer, [item(image_id="r"), item(image_id="b"), item(image_id="r")], images)
        assert all(r.reward == pytest.approx(0.8) for r in results) and fake.calls == 2
        uris = sorted(req.body["messages"][1]["content"][1]["image_url"]["url"]
                      for req in fake.requests)
        blue = base64.b64encode(png((0, 0, 255))).decode()
        assert uris == sorted([f"data:image/png;base64,{red}", f"data:image/png;base64,{blue}"])

    def test_bad_image_is_unscorable_without_a_call(self, fake):
        images = {"x": ImageData(b64=base64.b64encode(b"not an image").decode()),
                  "p": ImageData(path="../etc/passwd")}
        results = score(scorer_for(fake, send_image=True), [item(image_id="x"), item(image_id="p")],
                        images)
        assert [r.status for r in results] == [ItemStatus.unscorable] * 2 and fake.calls == 0
        assert all(r.reason.startswith("image:") for r in results)

    def test_images_stay_home_unless_asked(self, fake):
        images = {"r": ImageData(b64=base64.b64encode(png((1, 2, 3))).decode())}
        score(scorer_for(fake), [item(image_id="r")], images)
        assert isinstance(fake.requests[0].body["messages"][1]["content"], str)


class TestMetrics:
    def test_calls_tokens_and_cost_are_counted(self, fake):
        fake.script(http_error(500), chat("0.5", cost=0.002, prompt_tokens=100, completion_tokens=4))
        scorer = scorer_for(fake)
        registry = CollectorRegistry()
        scorer.register_metrics(registry)
        score(scorer, [item()])
        value = registry.get_sample_value
        assert value("llm_judge_upstream_calls_total", {"status": "500"}) == 1
        assert value("llm_judge_upstream_calls_total", {"status": "200"}) == 1
        assert value("llm_judge_tokens_total", {"kind": "prompt"}) == 100
        assert value("llm_judge_tokens_total", {"kind": "completion"}) == 4
        assert value("llm_judge_cost_usd_total") == pytest.approx(0.002)
