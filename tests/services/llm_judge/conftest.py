"""Fixtures of the judge's tests: one fake OpenAI-compatible server per session, reset per test."""

import pytest

from tests.helpers import serve_app
from tests.services.llm_judge.fake_openai import FakeOpenAI


@pytest.fixture(scope="session")
def _fake_server():
    fake = FakeOpenAI()
    with serve_app(fake.app) as url:
        fake.base_url = f"{url}/v1"
        yield fake


@pytest.fixture
def fake(_fake_server) -> FakeOpenAI:
    _fake_server.reset()
    return _fake_server
