"""Every service over real HTTP on the degenerate corpus: each item answered, probes answering throughout.

Small members are also scored in process with the old backtracking extractors patched back in
(tests/services/degenerate.py); the HTTP results must be the same, item by item. A second test
holds each service's text extraction on an event while a request is being scored: the probes
must still answer, which they cannot if that work ran on the event loop.
"""

from __future__ import annotations

import asyncio
import math
import threading
from dataclasses import dataclass

import httpx
import pytest

from proto.models import ItemStatus
from services.common.app import create_app
from services.common.scoring import Batch
from tests.helpers import serve_app, with_client
from tests.services import degenerate as d
from tests.services.llm_judge.fake_openai import FakeOpenAI, chat, user_text

pytestmark = pytest.mark.slow

CORPUS = {**d.SMALL, **d.LARGE}
N_SMALL = len(d.SMALL)


def length_judge(body: dict):
    """A deterministic judge: its score depends on the whole prompt, so every item is distinct."""
    return chat(f"{len(user_text(body)) % 11 / 10:g}")


@dataclass
class Service:
    name: str
    scorer: object
    settings: object
    requests: list[tuple[dict, object]]  # (params, reference)
    gate: tuple[object, str]  # (module, function) that reads completion text
    oracle: tuple[object, str, object] | None  # (owner, attribute, old implementation)


def _regex_format(_tmp, _fake) -> Service:
    from services.regex_format import rules
    from services.regex_format.scorer import RegexFormatScorer
    from services.regex_format.settings import RegexFormatSettings

    s = RegexFormatSettings()
    params = [{"mode": "think_answer"}, {"mode": "think_answer_explain", "partial": True},
              {"mode": "tags", "tags": list(d.TAGS5), "partial": True}, {"mode": "reasoning_solution"}]
    return Service("regex_format", RegexFormatScorer(s), s, [(p, None) for p in params],
                   (rules, "strict_tags"), (rules, "strict_tags", d.old_strict_tags))


def _vqa_accuracy(_tmp, _fake) -> Service:
    from services.vqa_accuracy import scorer as mod
    from services.vqa_accuracy.settings import VqaAccuracySettings

    s = VqaAccuracySettings()
    refs = ["4", "four", "4", "a dog", "4"]
    return Service("vqa_accuracy", mod.VqaAccuracyScorer(s), s, [({}, refs), ({"mode": "anls"}, "4")],
                   (mod, "extract_answer"), (mod, "extract_answer", d.old_vqa_extract_answer))


def _clip_cider(tmp, _fake) -> Service:
    from services.clip_cider import scorer as mod
    from tests.services.clip_cider.support import settings_for, write_tiny_config

    s = settings_for(write_tiny_config(tmp))
    refs = ["a dog runs in the park", "a cat sleeps on the mat"]
    return Service("clip_cider", mod.ClipCiderScorer(s), s, [({}, refs)],
                   (mod, "extract_explanation"), (mod, "extract_explanation", d.old_extract_explanation))


def _llm_judge(_tmp, fake) -> Service:
    from services.llm_judge import scorer as mod
    from services.llm_judge.rubrics import Rubric
    from tests.services.llm_judge.support import settings_for

    s = settings_for(fake)
    return Service("llm_judge", mod.LlmJudgeScorer(s), s, [({}, "4")],
                   (mod, "precheck"), (Rubric, "answer", d.old_rubric_answer))


def _math_equiv(_tmp, _fake) -> Service:
    from services.math_equiv import extract
    from services.math_equiv import scorer as mod
    from services.math_equiv.settings import MathEquivSettings

    s = MathEquivSettings(workers=2, time_limit_s=5.0)
    return Service("math_equiv", mod.MathEquivScorer(s), s, [({}, "4")], (mod, "extract_answer"),
                   (extract, "_last_tag", d.old_math_last_tag))


BUILD = {"regex_format": _regex_format, "vqa_accuracy": _vqa_accuracy, "clip_cider": _clip_cider,
         "llm_judge": _llm_judge, "math_equiv": _math_equiv}


@pytest.fixture(scope="module")
def fake():
    upstream = FakeOpenAI(default=length_judge)
    with serve_app(upstream.app) as url:
        upstream.base_url = f"{url}/v1"
        yield upstream


@pytest.fixture(scope="module", params=list(BUILD))
def service(request, fake, tmp_path_factory):
    svc = BUILD[request.param](tmp_path_factory.mktemp(request.param), fake)
    with serve_app(create_app(svc.scorer, svc.settings)) as url:
        yield svc, url


class Prober:
    """Polls /healthz and /readyz from a thread until stopped; keeps every outcome."""

    def __init__(self, url: str):
        self.url, self.outcomes = url, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                for path in ("/healthz", "/readyz"):
                    try:
                        self.outcomes.append(client.get(self.url + path).status_code)
                    except httpx.HTTPError as exc:
                        self.outcomes.append(repr(exc))
                self._stop.wait(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=60)


def _items(reference) -> list[dict]:
    return [{"completion": text, "reference": reference, "prompt": "What is 2 + 2?"}
            for text in CORPUS.values()]


def _oracle(svc: Service, params: dict, items: list[dict], monkeypatch):
    """The small items scored in process with the old extractor patched back in."""
    from proto.models import ScoreItem

    owner, attr, old = svc.oracle
    monkeypatch.setattr(owner, attr, old)
    scorer = svc.scorer
    if svc.name == "llm_judge":  # a fresh scorer: the served one's HTTP pool lives on another loop
        scorer = type(svc.scorer)(svc.settings)
        scorer.load()
    batch = Batch([ScoreItem.model_validate(it) for it in items], {},
                  scorer.params_model.model_validate(params))
    if asyncio.iscoroutinefunction(scorer.score):
        async def go():
            try:
                return await scorer.score(batch)
            finally:
                if scorer is not svc.scorer:
                    await scorer.aclose()
        return asyncio.run(go())
    return scorer.score(batch)


def test_corpus_is_answered_while_probes_answer_and_matches_the_old_extractors(service, monkeypatch):
    svc, url = service
    responses = []
    with Prober(url) as prober:
        for params, reference in svc.requests:
            items = _items(reference)
            resp = with_client(url, lambda c, it=items, p=params: c.score(it, params=p))
            responses.append((params, items, resp))
    assert prober.outcomes and all(o == 200 for o in prober.outcomes), prober.outcomes
    for params, items, resp in responses:
        assert len(resp.rewards) == len(items)
        for text, reward, detail in zip(CORPUS.values(), resp.rewards, resp.details, strict=True):
            if detail.status == ItemStatus.ok:
                assert reward is not None and math.isfinite(reward)
            else:
                assert reward is None
            if len(text) > d.CAP:
                assert detail.status == ItemStatus.unscorable
                assert detail.reason.startswith("completion_too_long")
        if svc.oracle is None:
            continue
        want = _oracle(svc, params, items[:N_SMALL], monkeypatch)
        monkeypatch.undo()
        for name, got_r, got_d, w in zip(d.SMALL, resp.rewards, resp.details, want, strict=False):
            where = (svc.name, params, name)
            assert (got_d.status, got_d.reason) == (w.status, w.reason), where
            assert got_r == (None if w.reward is None else pytest.approx(w.reward, abs=1e-6)), where
            assert got_d.parts == pytest.approx(w.parts, abs=1e-6), where


def test_text_work_runs_off_the_event_loop(service, monkeypatch):
    svc, url = service
    _probes_answer_while_held(svc, url, *svc.gate, monkeypatch)


def test_judge_reply_parsing_runs_off_the_event_loop(fake, tmp_path, monkeypatch):
    from services.llm_judge import scorer as mod

    svc = _llm_judge(tmp_path, fake)
    with serve_app(create_app(svc.scorer, svc.settings)) as url:
        _probes_answer_while_held(svc, url, mod, "extract_score", monkeypatch)


def _probes_answer_while_held(svc: Service, url: str, owner, attr: str, monkeypatch) -> None:
    """Park `owner.attr` on an event mid-request; /healthz and /readyz must answer meanwhile."""
    entered, release = threading.Event(), threading.Event()
    real = getattr(owner, attr)

    def held(*args, **kwargs):
        entered.set()
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, attr, held)
    params, reference = svc.requests[0]
    body = {"items": _items(reference)[:4], "params": params}
    result: dict = {}

    def send():
        result["response"] = httpx.post(f"{url}/v1/score", json=body, timeout=120)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        assert entered.wait(60), f"{svc.name} never reached {attr}"
        # The scorer is now parked inside its text work; a blocked loop could not answer these.
        with httpx.Client(timeout=10) as client:
            assert client.get(f"{url}/healthz").status_code == 200
            assert client.get(f"{url}/readyz").status_code == 200
    finally:
        release.set()
        sender.join(timeout=120)
    assert result["response"].status_code == 200
    assert len(result["response"].json()["rewards"]) == 4

