"""clip_cider without its weights and without a hub: found on disk with no network, or a deadline,
a reason on /readyz naming the tag, the cache and the fixes, no retries, and SIGTERM at any moment."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from proto.models import ImageData, ScoreItem
from services.clip_cider.scorer import ClipCiderParams, ClipCiderScorer
from services.clip_cider.weights import LocalWeights, locate, weights_problem
from services.common.scoring import Batch, NotReadyError
from tests.helpers import ROOT, free_port
from tests.services.clip_cider.support import b64, encode, image, settings_for

OPENAI_REPO = "models--timm--vit_base_patch32_clip_224.openai"
FIXES = ("services.clip_cider.weights fetch", "HF_ENDPOINT", "CLIP_CIDER_CLIP_PRETRAINED")


@pytest.fixture
def refused(monkeypatch):
    """A hub endpoint on a local port nothing listens on."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")


@pytest.fixture
def hanging(monkeypatch):
    """A hub endpoint that accepts connections and never answers."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{sock.getsockname()[1]}")
        yield


def offline_scorer(tmp_path, **overrides):
    """The real tag (ViT-B-32/openai) with an empty cache: the weights must come from the hub."""
    return ClipCiderScorer(settings_for(None, clip_model="ViT-B-32", clip_pretrained="openai",
                                        clip_model_config=None, clip_cache_dir=tmp_path / "cache",
                                        **overrides))


def wait_for(predicate, guard_s: float = 120.0):
    """Poll until `predicate()` is truthy; the guard only stops a broken test from hanging."""
    deadline = time.monotonic() + guard_s
    while not (result := predicate()):
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)
    return result


def downloads() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True)
            if "services.clip_cider.weights" in " ".join(p.cmdline())]


class TestOnDisk:
    def test_random_weights_and_checkpoint_files_need_nothing(self, tmp_path):
        ckpt = tmp_path / "tiny.pt"
        ckpt.write_bytes(b"x")
        assert locate("ViT-B-32", "", None) == LocalWeights(None)
        assert locate("ViT-B-32", str(ckpt), None) == LocalWeights(str(ckpt))
        with pytest.raises(ValueError, match="no weights 'nope'"):
            locate("ViT-B-32", "nope", None)

    def test_a_cached_tag_is_found_without_the_hub(self, tmp_path, refused):
        assert locate("ViT-B-32", "openai", tmp_path) is None
        snapshot = tmp_path / OPENAI_REPO / "snapshots" / ("0" * 40)
        snapshot.mkdir(parents=True)
        (tmp_path / OPENAI_REPO / "refs").mkdir()
        (tmp_path / OPENAI_REPO / "refs" / "main").write_text("0" * 40)
        (snapshot / "open_clip_model.safetensors").write_bytes(b"weights")
        found = locate("ViT-B-32", "openai", tmp_path)
        assert found.path == str(snapshot / "open_clip_model.safetensors")
        # What open_clip takes from the tag besides the file: its preprocessing.
        assert found.preprocess["image_interpolation"] == "bicubic" and len(found.preprocess["image_mean"]) == 3
        assert weights_problem(settings_for(None, clip_model="ViT-B-32", clip_pretrained="openai",
                                            clip_model_config=None, clip_cache_dir=tmp_path)) is None


class TestOffline:
    def test_a_refused_hub_is_reported_at_once_with_the_fixes(self, tmp_path, refused):
        scorer = offline_scorer(tmp_path)
        scorer.load()  # returns: the service starts, and says why it cannot score
        reason = wait_for(lambda: (r := scorer.not_ready_reason()) and not r.startswith("downloading") and r)
        assert "ViT-B-32/openai" in reason and str(tmp_path / "cache") in reason
        assert "cannot be reached" in reason and all(fix in reason for fix in FIXES), reason
        assert downloads() == []  # refused before any download started: nothing to retry
        with pytest.raises(NotReadyError, match="cannot be reached"):
            scorer.score(Batch([ScoreItem(completion="x", image_id="a")],
                               {"a": ImageData(**b64(encode(image(0))))}, ClipCiderParams()))
        scorer.close()

    def test_a_hanging_hub_costs_the_deadline_then_the_download_is_killed(self, tmp_path, hanging):
        scorer = offline_scorer(tmp_path, load_timeout_s=3)
        scorer.load()
        assert scorer.not_ready_reason().startswith(f"downloading CLIP weights ViT-B-32/openai into {tmp_path}")
        reason = wait_for(lambda: scorer._download.error)
        assert "no download within CLIP_CIDER_LOAD_TIMEOUT_S=3 s" in reason and all(f in reason for f in FIXES)
        assert scorer.not_ready_reason() == reason
        assert downloads() == []
        scorer.close()

    def test_closing_while_downloading_kills_the_download(self, tmp_path, hanging):
        scorer = offline_scorer(tmp_path, load_timeout_s=600)
        scorer.load()
        wait_for(downloads)
        scorer.close()
        assert downloads() == [] and not scorer._download._thread.is_alive()


@pytest.mark.slow
def test_the_service_answers_probes_while_downloading_and_sigterm_ends_it_and_its_download(tmp_path, hanging):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLIP_CIDER_CLIP_PRETRAINED": "openai",
           "CLIP_CIDER_CLIP_CACHE_DIR": str(tmp_path), "CLIP_CIDER_LOAD_TIMEOUT_S": "600",
           "CLIP_CIDER_DRAIN_GRACE_S": "1", "CLIP_CIDER_CLIP_DEVICE": "cpu"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "services.clip_cider.main:app", "--host",
                             "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    service = psutil.Process(proc.pid)
    try:
        def readyz():
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
        resp = wait_for(lambda: (r := readyz()) is not None and "downloading" in r.text and r)
        assert resp.status_code == 503 and "ViT-B-32/openai" in resp.json()["error"]["message"]
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        children = service.children(recursive=True)
        assert children, "no download child"
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        wait_for(lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children),
                 guard_s=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_check_command_prints_the_reason_and_fails(tmp_path, refused):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLIP_CIDER_CLIP_PRETRAINED": "openai",
           "CLIP_CIDER_CLIP_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "services.clip_cider.weights"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "cannot be reached" in done.stdout and "HF_ENDPOINT" in done.stdout


class _Built(Exception):
    pass


@pytest.mark.parametrize(("pretrained", "quick"), [("openai", True), ("laion2b_s34b_b79k", False),
                                                    ("", False)])
def test_openai_weights_get_the_quickgelu_they_were_trained_with(monkeypatch, pretrained, quick):
    # open_clip builds ViT-B-32 with GELU whatever the tag, and is silent when the OpenAI weights
    # come from a cached file: CLIPScore's embeddings need QuickGELU.
    import open_clip

    from services.clip_cider.clip import ClipEmbedder, ClipSpec

    seen = {}

    def capture(*args, **kwargs):
        seen.update(kwargs)
        raise _Built

    monkeypatch.setattr(open_clip, "create_model_and_transforms", capture)
    cached = LocalWeights(path="/cache/open_clip_model.safetensors", preprocess={})
    with pytest.raises(_Built):
        ClipEmbedder(ClipSpec(model="ViT-B-32", pretrained=pretrained, device="cpu")).load(
            cached if pretrained else None)
    assert seen.get("force_quick_gelu", False) is quick


def test_force_quick_gelu_builds_quickgelu_activations():
    import open_clip

    model = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True)
    kinds = {type(m).__name__ for m in model.modules()}
    assert "QuickGELU" in kinds and "GELU" not in kinds
