"""A loaded math_equiv scorer (two workers), one per test module that asks for it."""

import pytest

from services.math_equiv.scorer import MathEquivScorer
from services.math_equiv.settings import MathEquivSettings


@pytest.fixture(scope="module")
def scorer():
    s = MathEquivScorer(MathEquivSettings(workers=2, time_limit_s=10.0))
    s.load()
    yield s
    s.close()
