"""max_completion_chars: longer completions are unscorable before any scorer sees them, in place."""

import httpx
import pytest

from proto.models import ItemStatus, ScoreResponse, ServiceInfo
from services.common.app import create_app
from services.common.scoring import Batch
from services.regex_format.settings import RegexFormatSettings
from tests.helpers import serve_app
from tests.services.common.toy import ToyScorer, ToySettings

CAP = 12


class Spy(ToyScorer):
    """The toy scorer, remembering every completion it was given."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def score(self, batch: Batch):
        self.seen.extend(it.completion for it in batch.items)
        return super().score(batch)


@pytest.fixture(scope="module")
def served():
    spy = Spy()
    with serve_app(create_app(spy, ToySettings(max_completion_chars=CAP))) as url:
        yield spy, url


def score(url, completions):
    resp = httpx.post(f"{url}/v1/score", json={"items": [{"completion": c} for c in completions]},
                      timeout=30)
    assert resp.status_code == 200, resp.text
    return ScoreResponse.model_validate_json(resp.content)


def test_the_cap_is_inclusive_and_results_keep_their_places(served):
    spy, url = served
    at_cap, over = "len:" + "x" * (CAP - 4), "len:" + "x" * (CAP - 3)
    spy.seen.clear()
    resp = score(url, [over, "len:ab", at_cap, over + "y" * 50_000, "len:a"])
    assert resp.rewards == [None, 2.0, CAP - 4, None, 1.0]
    assert [d.status for d in resp.details] == [ItemStatus.unscorable, "ok", "ok", ItemStatus.unscorable, "ok"]
    assert resp.details[0].reason == f"completion_too_long: {CAP + 1} characters, over TOY_MAX_COMPLETION_CHARS={CAP}"
    assert resp.details[3].reason.startswith(f"completion_too_long: {CAP + 50_001} characters")
    assert spy.seen == ["len:ab", at_cap, "len:a"]


def test_a_batch_of_only_long_completions_never_reaches_the_scorer(served):
    spy, url = served
    spy.seen.clear()
    resp = score(url, ["crash" * 10, "x" * 100])
    assert resp.rewards == [None, None]
    assert spy.seen == []


def test_info_shows_the_cap_and_metrics_count_the_reason(served):
    _, url = served
    score(url, ["z" * (CAP + 1)])
    info = ServiceInfo.model_validate_json(httpx.get(f"{url}/v1/info").content)
    assert info.limits.max_completion_chars == CAP
    metrics = httpx.get(f"{url}/metrics").text
    assert 'reason="completion_too_long"' in metrics


def test_each_service_reads_the_cap_from_its_own_prefix(monkeypatch):
    monkeypatch.setenv("REGEX_FORMAT_MAX_COMPLETION_CHARS", "100")
    assert RegexFormatSettings().max_completion_chars == 100
    monkeypatch.delenv("REGEX_FORMAT_MAX_COMPLETION_CHARS")
    assert RegexFormatSettings().max_completion_chars == 32768
