"""Micro-batching: concurrent callers share forward passes, chunks bound a pass, failures stay contained."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from proto.models import ImageData, ScoreItem
from services.clip_cider.batching import MicroBatcher
from services.clip_cider.scorer import ClipCiderParams
from services.common.scoring import Batch
from tests.services.clip_cider.support import b64, encode, image, loaded, settings_for


class Recorder:
    """A forward pass that records what it saw and can hold the device thread on its first call."""

    def __init__(self, hold_first: bool = False, fail_kind: str | None = None):
        self.calls: list[tuple[str, int]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        self.hold_first, self.fail_kind = hold_first, fail_kind

    def __call__(self, kind, rows):
        self.calls.append((kind, len(rows)))
        self.started.set()
        if self.hold_first and len(self.calls) == 1:
            assert self.release.wait(10)
        if kind == self.fail_kind:
            raise RuntimeError("device on fire")
        return rows * 2


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


@pytest.fixture
def make():
    made = []

    def _make(forward, max_rows=64, wait_s=0.0):
        b = MicroBatcher(forward, max_rows, wait_s)
        b.start()
        made.append(b)
        return b

    yield _make
    for b in made:
        b.close()


def test_jobs_queued_while_the_device_is_busy_share_one_pass(make):
    fwd = Recorder(hold_first=True)
    b = make(fwd)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(b.submit, "text", torch.full((1, 2), 1.0))
        assert fwd.started.wait(10)
        later = [pool.submit(b.submit, "text", torch.full((n, 2), float(n))) for n in (2, 3, 4)]
        wait_for(lambda: b.pending() == 3)
        fwd.release.set()
        assert first.result().tolist() == [[2.0, 2.0]]
        for n, fut in zip((2, 3, 4), later, strict=True):
            assert fut.result().tolist() == [[2.0 * n] * 2] * n
    assert fwd.calls == [("text", 1), ("text", 9)]
    assert b.forward_passes == 2 and b.rows["text"] == 10


def test_a_pass_never_exceeds_max_rows(make):
    fwd = Recorder()
    b = make(fwd, max_rows=4)
    out = b.submit("image", torch.arange(10.0)[:, None])
    assert out[:, 0].tolist() == [2.0 * i for i in range(10)]
    assert [n for _, n in fwd.calls] == [4, 4, 2]


def test_kinds_are_never_mixed_in_one_pass(make):
    fwd = Recorder(hold_first=True)
    b = make(fwd)
    with ThreadPoolExecutor(3) as pool:
        pool.submit(b.submit, "text", torch.ones(1, 1))
        assert fwd.started.wait(10)
        futs = [pool.submit(b.submit, k, torch.ones(2, 1)) for k in ("image", "text")]
        wait_for(lambda: b.pending() == 2)
        fwd.release.set()
        [f.result() for f in futs]
    assert sorted(fwd.calls[1:]) == [("image", 2), ("text", 2)]


def test_a_failed_pass_fails_its_callers_and_the_thread_lives_on(make):
    b = make(Recorder(fail_kind="image"))
    with pytest.raises(RuntimeError, match="device on fire"):
        b.submit("image", torch.ones(1, 1))
    assert b.submit("text", torch.ones(1, 1)).tolist() == [[2.0]]


def test_submit_before_start_names_the_fix():
    with pytest.raises(RuntimeError, match="load"):
        MicroBatcher(Recorder(), 4).submit("text", torch.ones(1, 1))


def test_concurrent_requests_score_as_they_would_alone(tiny_config):
    def request(seed):
        items = [ScoreItem(completion=f"<explain>noise {seed} {j}</explain>", image_id="i") for j in range(4)]
        return Batch(items=items, images={"i": ImageData(**b64(encode(image(seed))))},
                     params=ClipCiderParams())

    # No cache: images and texts of the concurrent round go through the device thread again.
    with loaded(settings_for(tiny_config, clip_batch_wait_ms=20, image_cache_size=0)) as s:
        alone = [[r.parts["clip"] for r in s.score(request(seed))] for seed in range(6)]
        before = s.embedder.stats()["images_embedded"]
        with ThreadPoolExecutor(6) as pool:
            together = list(pool.map(lambda seed: [r.parts["clip"] for r in s.score(request(seed))],
                                     range(6)))
        assert s.embedder.stats()["images_embedded"] - before == 6
    assert together == [pytest.approx(a, abs=1e-6) for a in alone]
