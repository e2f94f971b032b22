"""The HTTP contract of create_app, over real HTTP: routes, errors, limits, auth, metrics."""

import asyncio
import json
import socket
import threading

import httpx
import pytest

from proto.models import ErrorResponse, ScoreResponse, ServiceInfo
from services.common.auth import OPEN_PATHS
from tests.helpers import serve_app
from tests.services.common.toy import make_app


@pytest.fixture(scope="module")
def url():
    with serve_app(make_app(max_batch=8, max_body_bytes=4096)) as base:
        yield base


def post(url, body, **kw):
    return httpx.post(f"{url}/v1/score", json=body, timeout=30, **kw)


def error_of(resp) -> ErrorResponse:
    return ErrorResponse.model_validate_json(resp.content)


class TestRoutes:
    def test_score_returns_one_reward_per_item_in_order(self, url):
        resp = post(url, {"items": [{"completion": "len:abc"}, {"completion": "len:a"}]})
        assert resp.status_code == 200
        body = ScoreResponse.model_validate_json(resp.content)
        assert body.rewards == [3.0, 1.0]
        assert body.service == "toy" and body.version == "0.0.1"
        assert resp.headers["x-request-id"]

    def test_params_reach_the_scorer(self, url):
        resp = post(url, {"items": [{"completion": "len:ab"}], "params": {"scale": 0.5}})
        assert resp.json()["rewards"] == [1.0]

    def test_failing_item_is_null_not_a_failed_batch(self, url):
        resp = post(url, {"items": [{"completion": "len:ab"}, {"completion": "boom"},
                                    {"completion": "unscorable"}]})
        body = ScoreResponse.model_validate_json(resp.content)
        assert body.rewards == [2.0, None, None]
        assert [d.status for d in body.details] == ["ok", "error", "unscorable"]
        assert "ValueError" in body.details[1].reason
        assert "no reference" in body.details[2].reason

    def test_info(self, url):
        info = ServiceInfo.model_validate_json(httpx.get(f"{url}/v1/info").content)
        assert info.name == "toy" and info.limits.max_batch == 8
        assert info.params_schema["properties"]["scale"]["type"] == "number"
        assert len(info.fingerprint) == 16

    def test_probes(self, url):
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{url}/readyz").status_code == 200

    def test_metrics_count_requests_items_and_item_errors(self, url):
        post(url, {"items": [{"completion": "boom"}]})
        text = httpx.get(f"{url}/metrics").text
        assert 'rewardstack_requests_total{status="200"}' in text
        assert "rewardstack_items_total" in text
        assert 'rewardstack_item_errors_total{reason="internal error",status="error"}' in text
        assert "rewardstack_request_seconds_bucket" in text
        assert "rewardstack_batch_size_bucket" in text
        assert "rewardstack_in_flight" in text


class TestErrors:
    @pytest.mark.parametrize("body,fragment", [
        ({"items": []}, "items"),
        ({"items": [{"completion": "x", "surprise": 1}]}, "surprise"),
        ({"items": [{"completion": "x", "image_id": "nope"}]}, "absent from 'images'"),
        ({"items": [{"completion": "x"}], "params": {"scale": "big"}}, "params.scale"),
        ({"items": [{"completion": "x"}], "params": {"unknown": 1}}, "params.unknown"),
        ({"items": [{"completion": "x"}], "images": {"a": {}}}, "exactly one of 'b64' or 'path'"),
    ])
    def test_validation_is_422_with_typed_body(self, url, body, fragment):
        resp = post(url, body)
        assert resp.status_code == 422
        err = error_of(resp).error
        assert err.type == "validation_error" and fragment in err.message

    def test_malformed_json_is_422(self, url):
        resp = httpx.post(f"{url}/v1/score", content=b"{not json", headers={"content-type": "application/json"})
        assert resp.status_code == 422 and error_of(resp).error.type == "validation_error"

    def test_scorer_params_error_is_422(self, url):
        resp = post(url, {"items": [{"completion": "badparam"}]})
        assert resp.status_code == 422 and "unsupported" in error_of(resp).error.message

    def test_upstream_error_is_502(self, url):
        resp = post(url, {"items": [{"completion": "upstream"}]})
        assert resp.status_code == 502 and error_of(resp).error.type == "upstream_error"

    def test_unexpected_exception_is_500_without_details(self, url, caplog):
        resp = post(url, {"items": [{"completion": "crash"}]})
        assert resp.status_code == 500
        err = error_of(resp).error
        assert err.type == "internal_error" and err.request_id == resp.headers["x-request-id"]
        assert "secret internal detail" not in resp.text

    def test_unknown_route_is_typed_404(self, url):
        resp = httpx.get(f"{url}/v2/nothing")
        assert resp.status_code == 404 and error_of(resp).error.type == "not_found"

    def test_too_many_items_is_413(self, url):
        resp = post(url, {"items": [{"completion": "x"}] * 9})
        assert resp.status_code == 413
        assert "max_batch of 8" in error_of(resp).error.message

    def test_declared_body_over_limit_is_413(self, url):
        resp = post(url, {"items": [{"completion": "x" * 5000}]})
        assert resp.status_code == 413 and error_of(resp).error.type == "payload_too_large"

    def test_chunked_body_over_limit_is_413(self, url):
        def chunks():
            yield b'{"items": [{"completion": "'
            for _ in range(20):
                yield b"x" * 512
            yield b'"}]}'
        resp = httpx.post(f"{url}/v1/score", content=chunks(), headers={"content-type": "application/json"})
        assert resp.request.headers.get("transfer-encoding") == "chunked"
        assert resp.status_code == 413 and error_of(resp).error.type == "payload_too_large"

    def test_chunked_body_under_limit_is_scored(self, url):
        def chunks():
            yield b'{"items": [{"completion": '
            yield b'"len:abcd"}]}'
        resp = httpx.post(f"{url}/v1/score", content=chunks(), headers={"content-type": "application/json"})
        assert resp.status_code == 200 and resp.json()["rewards"] == [4.0]


def test_saturation_gives_503_with_retry_after():
    app = make_app(max_concurrency=1, max_queue=1, retry_after_s=3)
    with serve_app(app) as base:
        async def burst():
            async with httpx.AsyncClient(timeout=30) as client:
                body = {"items": [{"completion": "sleep:0.6"}]}
                return await asyncio.gather(*(client.post(f"{base}/v1/score", json=body) for _ in range(5)))
        responses = asyncio.run(burst())
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 503, 503, 503]
    refused = [r for r in responses if r.status_code == 503]
    assert all(r.headers["retry-after"] == "3" for r in refused)
    assert all(error_of(r).error.type == "overloaded" for r in refused)


def test_not_ready_until_loaded():
    app = make_app()
    # Without the lifespan the scorer never loaded: the service must say so, not score.
    from starlette.testclient import TestClient
    client = TestClient(app)
    assert client.get("/readyz").status_code == 503
    resp = client.post("/v1/score", json={"items": [{"completion": "x"}]})
    assert resp.status_code == 503 and error_of(resp).error.type == "not_ready"
    with TestClient(app) as live:  # entering runs the lifespan
        assert live.get("/readyz").status_code == 200


class TestAuth:
    TOKEN = "s3cret-token-for-tests"

    def test_every_route_but_probes_needs_the_token(self):
        app = make_app(auth_token=self.TOKEN)
        paths = {route.path for route in app.routes}
        assert {"/v1/score", "/v1/info", "/metrics"} <= paths
        with serve_app(app) as base:
            for route in app.routes:
                for method in sorted(getattr(route, "methods", None) or {"GET"}):
                    if method == "HEAD":
                        continue
                    path = route.path.replace("{", "").replace("}", "")
                    resp = httpx.request(method, f"{base}{path}", json={"items": [{"completion": "x"}]})
                    if route.path in OPEN_PATHS:
                        assert resp.status_code == 200, route.path
                    else:
                        assert resp.status_code == 401, route.path
                        assert error_of(resp).error.type == "unauthorized"
                        assert "TOY_AUTH_TOKEN" in error_of(resp).error.message
            headers = {"authorization": f"Bearer {self.TOKEN}"}
            ok = httpx.post(f"{base}/v1/score", json={"items": [{"completion": "ab"}]}, headers=headers)
            assert ok.status_code == 200
            wrong = httpx.get(f"{base}/v1/info", headers={"authorization": "Bearer nope"})
            assert wrong.status_code == 401
            assert self.TOKEN not in wrong.text

    def test_placeholder_token_is_refused(self):
        with pytest.raises(ValueError, match="placeholder"):
            make_app(auth_token="changeme")


def test_score_runs_off_the_event_loop():
    """A probe is answered while a scoring call is provably still running (blocked in the scorer)."""
    app = make_app()
    toy = app.state.scorer
    with serve_app(app) as base:
        result = {}

        def held():
            result["r"] = post(base, {"items": [{"completion": "hold"}]})
        t = threading.Thread(target=held)
        t.start()
        try:
            assert toy.holding.wait(60), "the scoring call never reached the scorer"
            # Scoring on the event loop would block this probe until the release below.
            probe = httpx.get(f"{base}/healthz", timeout=30)
            still_scoring = not toy.release.is_set() and t.is_alive()
        finally:
            toy.release.set()
            t.join(60)
        assert probe.status_code == 200 and still_scoring
        assert result["r"].status_code == 200 and result["r"].json()["rewards"] == [1.0]


def test_raw_socket_garbage_does_not_kill_service():
    with serve_app(make_app()) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"NOT HTTP\r\n\r\n")
        assert post(base, {"items": [{"completion": "ab"}]}).status_code == 200
        assert json.loads(httpx.get(f"{base}/readyz").text)["status"] == "ready"
