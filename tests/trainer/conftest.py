"""Fixtures the trainer's tests share: a live regex_format service for reward functions to call."""

import pytest

from tests.helpers import serve_app


@pytest.fixture(scope="module")
def regex_url():
    from services.common.app import create_app
    from services.regex_format.scorer import RegexFormatScorer
    from services.regex_format.settings import RegexFormatSettings

    settings = RegexFormatSettings()
    with serve_app(create_app(RegexFormatScorer(settings), settings)) as url:
        yield url
