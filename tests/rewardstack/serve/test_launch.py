"""`rewardstack serve` tells the truth: skipped services say why, taken ports, log tails, crashed children."""

import os
import socket
import subprocess
import sys

import httpx
import pytest

from rewardstack.serve.launch import LaunchError, available, launch_services
from rewardstack.serve.supervisor import Supervisor
from tests.helpers import ROOT


def test_serve_with_a_taken_port_says_so_and_starts_nothing(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "rewardstack", "serve", "regex_format", "--base-port", str(port),
             "--log-dir", str(tmp_path)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode == 2
    assert f"port {port} on 127.0.0.1 is taken" in proc.stderr and "--base-port" in proc.stderr
    assert "ready" not in proc.stderr


@pytest.mark.slow
def test_clip_cider_without_cached_weights_offline_is_skipped_with_the_fix(tmp_path):
    import open_clip  # noqa: F401  (a dev dependency: without it this fails, it does not skip)
    offline = {"CLIP_CIDER_CLIP_CACHE_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1", "CLIP_CIDER_CLIP_PRETRAINED": "openai"}
    chosen, skipped = available(["clip_cider"], offline)
    assert chosen == []
    assert "not cached" in skipped["clip_cider"] and "CLIP_CIDER_CLIP_PRETRAINED" in skipped["clip_cider"]
    (tmp_path / "ViT-B-32.pt").write_bytes(b"weights")  # where open_clip keeps URL downloads
    assert available(["clip_cider"], offline) == (["clip_cider"], {})
    assert available(["clip_cider"], {**offline, "CLIP_CIDER_CLIP_PRETRAINED": ""}) == (["clip_cider"], {})


def test_a_service_dying_at_start_is_reported_with_its_log_tail():
    with pytest.raises(LaunchError) as err, launch_services(["regex_format"], env={"REGEX_FORMAT_MAX_BATCH": "0"}, quiet=False):
        pass
    message = str(err.value)
    assert "exited with code" in message and "max_batch" in message.lower()


@pytest.mark.slow
def test_healthy_services_stay_up_and_a_crashed_one_is_restarted(tmp_path, monkeypatch):
    monkeypatch.setenv("VQA_ACCURACY_MAX_BATCH", "0")  # vqa_accuracy refuses to start
    said = []
    sup = Supervisor(["regex_format", "vqa_accuracy"], "127.0.0.1", None, tmp_path,
                     say=said.append, backoff_s=0.0)
    try:
        urls = sup.start()
        assert list(urls) == ["regex_format"]
        assert any("not serving vqa_accuracy" in s and "max_batch" in s.lower() for s in said)
        sup.children["regex_format"].proc.kill()
        sup.children["regex_format"].proc.wait()
        assert sup.check() is None  # notices the crash, schedules a restart
        assert sup.check() is None  # restarts it
        assert httpx.get(f"{urls['regex_format']}/readyz").status_code == 200
        assert any("regex_format is back" in s for s in said)
        sup.on_crash = "exit"
        sup.children["regex_format"].proc.kill()
        sup.children["regex_format"].proc.wait()
        assert "regex_format exited with code" in sup.check()
    finally:
        sup.stop_all()


def test_a_child_that_keeps_crashing_is_given_up_with_its_log_tail(tmp_path):
    import tempfile

    from rewardstack.serve.supervisor import Child

    said = []
    sup = Supervisor([], "127.0.0.1", None, tmp_path, say=said.append, max_restarts=0)
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen([sys.executable, "-c", "print('weights missing'); raise SystemExit(3)"],
                                stdout=log, stderr=subprocess.STDOUT, text=True)
        proc.log = log
        proc.wait()
        sup.children["x"] = Child("x", "http://127.0.0.1:1", 1, proc=proc)
        assert sup.check() == "every service has stopped for good; see the messages above"
    assert "x exited with code 3 after 0 restarts; giving up" in said[0] and "| weights missing" in said[0]
