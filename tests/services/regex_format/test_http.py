"""regex_format over real HTTP: the contract's errors for bad patterns, and a large batch."""


import httpx
import pytest

from services.regex_format.main import app
from tests.helpers import serve_app


@pytest.fixture(scope="module")
def url():
    with serve_app(app) as base:
        yield base


@pytest.mark.parametrize("pattern,fragment", [
    (r"(a)\1", "backreferences"),
    (r"(?<=a)b", "not supported by RE2"),
    (r"(unclosed", "missing )"),
])
def test_unsupported_pattern_is_422_naming_the_problem(url, pattern, fragment):
    resp = httpx.post(f"{url}/v1/score", json={
        "items": [{"completion": "x" * 10_000}], "params": {"mode": "pattern", "pattern": pattern}})
    assert resp.status_code == 422
    body = resp.json()["error"]
    assert body["type"] == "validation_error" and fragment in body["message"]


def test_evil_pattern_on_long_input_is_answered(url):
    # The timeout guards a hang (backtracking would never finish), not the expected milliseconds.
    resp = httpx.post(f"{url}/v1/score", timeout=60, json={
        "items": [{"completion": "x" * 10_000}] * 8, "params": {"mode": "pattern", "pattern": "(x+x+)+y"}})
    assert resp.status_code == 200 and resp.json()["rewards"] == [0.0] * 8


def test_mode_without_its_argument_is_422(url):
    resp = httpx.post(f"{url}/v1/score", json={"items": [{"completion": "x"}], "params": {"mode": "tags"}})
    assert resp.status_code == 422 and "needs a non-empty 'tags'" in resp.json()["error"]["message"]
