"""`rewardstack gateway --config`: a bad config is one line and exit 2; a good one serves the routes."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import yaml

from tests.helpers import ROOT, free_port, wait_ready
from tests.services.gateway import payloads as p
from tests.services.gateway.support import rewards, services


def _run(*args: str, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "rewardstack", "gateway", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, **kw)
    res.stderr = " ".join(res.stderr.split())  # Rich wraps long messages at the terminal width
    return res


def test_a_bad_entry_is_one_line_and_exit_2(tmp_path):
    cfg = tmp_path / "rewards.yaml"
    cfg.write_text("rewards:\n  - {name: format, url: ftp://nowhere}\n")
    res = _run("--config", str(cfg))
    assert res.returncode == 2
    assert "must start with one of" in res.stderr and "Traceback" not in res.stderr


def test_a_misspelt_gateway_field_is_named_with_exit_2(tmp_path):
    cfg = tmp_path / "rewards.yaml"
    cfg.write_text("rewards:\n  - {name: format, url: http://127.0.0.1:1}\nfalback: 0.5\n")
    res = _run("--config", str(cfg), "--port", str(free_port()))
    assert res.returncode == 2
    assert "falback" in res.stderr and "Traceback" not in res.stderr


def test_the_service_alone_refuses_to_start_without_a_config():
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_CONFIG"}
    res = subprocess.run([sys.executable, "-m", "uvicorn", "services.gateway.main:app", "--port",
                          str(free_port())], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "GATEWAY_CONFIG is not set" in res.stderr


def test_serves_slime_and_openrlhf_from_the_example_shaped_config(tmp_path):
    with services() as svc:
        cfg = tmp_path / "rewards.yaml"
        example = yaml.safe_load((ROOT / "trainer" / "examples" / "gateway.yaml").read_text())
        example["rewards"] = rewards(svc)
        cfg.write_text(yaml.safe_dump(example))
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "rewardstack", "gateway", "--config", str(cfg),
                                 "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, proc, 60)
            assert httpx.post(url + "/slime/reward", json=p.slime_single()).json()["score"] == 1.5
            assert httpx.post(url + "/openrlhf/get_reward", json=p.openrlhf_single()).json()["rewards"] == [1.5]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            proc.stdout.close()
