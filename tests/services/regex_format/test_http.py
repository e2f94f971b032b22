"""regex_format over real HTTP: the contract's errors for bad patterns, and a large batch."""

import time

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
def test_unsupported_pattern_is_422_naming_the_problem_within_a_second(url, pattern, fragment):
    started = time.perf_counter()
    resp = httpx.post(f"{url}/v1/score", json={
        "items": [{"completion": "x" * 10_000}], "params": {"mode": "pattern", "pattern": pattern}})
    assert time.perf_counter() - started < 1.0
    assert resp.status_code == 422
    body = resp.json()["error"]
    assert body["type"] == "validation_error" and fragment in body["message"]


def test_evil_pattern_on_long_input_answers_within_a_second(url):
    started = time.perf_counter()
    resp = httpx.post(f"{url}/v1/score", json={
        "items": [{"completion": "x" * 10_000}] * 8, "params": {"mode": "pattern", "pattern": "(x+x+)+y"}})
    assert time.perf_counter() - started < 1.0
    assert resp.status_code == 200 and resp.json()["rewards"] == [0.0] * 8


def test_mode_without_its_argument_is_422(url):
    resp = httpx.post(f"{url}/v1/score", json={"items": [{"completion": "x"}], "params": {"mode": "tags"}})
    assert resp.status_code == 422 and "needs a non-empty 'tags'" in resp.json()["error"]["message"]
