"""scripts/stack_check.sh's pieces without an engine: its known-answer requests against the real
services over HTTP, its fake judge upstream behind the real llm_judge, and the files it uses."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import subprocess
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest
import yaml

from services.common.app import create_app
from tests.deploy.support import (
    COMPOSE_SPEC,
    ROOT,
    env_names,
    raw_compose,
    resolved_compose,
    settings_class,
    uvicorn_target,
)
from tests.helpers import serve_app

CHECK_DIR = ROOT / "docker" / "stack-check"
SCRIPT = ROOT / "scripts" / "stack_check.sh"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"stack_check_{name}", CHECK_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


probe = _module("probe")
fake_openai = _module("fake_openai")


@contextlib.contextmanager
def fake_upstream(handler=None):
    """The stack check's fake judge upstream on a loopback port; yields its /v1 URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler or fake_openai.Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _serve(service: str, **settings):
    """Serve the service's app over real HTTP, built as its main module builds it but from
    explicit settings (main reads the environment once, at import)."""
    scorer_mod = importlib.import_module(f"services.{service}.scorer")
    scorer_cls = next(v for k, v in vars(scorer_mod).items()
                      if k.endswith("Scorer") and isinstance(v, type) and v.__module__ == scorer_mod.__name__)
    values = settings_class(service)(**settings)
    return serve_app(create_app(scorer_cls(values), values))


def test_the_probe_covers_every_reward_service_of_the_default_profile():
    services = resolved_compose()["services"]
    default = {n for n, s in services.items() if not s.get("profiles") and uvicorn_target(s["command"])}
    assert set(probe.REQUESTS) == default - {"gateway"}  # the gateway has its own probe


@pytest.mark.parametrize("service", ["regex_format", "math_equiv", "vqa_accuracy"])
def test_the_known_answers_are_the_services_answers(service, capsys):
    with _serve(service) as url:
        assert probe.score(service, url) is None
    assert "rewards [1.0, 0.0]" in capsys.readouterr().out


def test_the_judge_scores_through_the_fake_upstream(capsys):
    with fake_upstream() as upstream, _serve("llm_judge", base_url=upstream, max_retries=0) as url:
        assert probe.score("llm_judge", url) is None
    assert "rewards [1.0, 0.0]" in capsys.readouterr().out


def test_the_probe_fails_when_the_judge_does_not_grade():
    class Lenient(fake_openai.Handler):  # an upstream that calls everything right
        def do_POST(self):
            self._send(200, {"choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": "1"}}]})

    with fake_upstream(Lenient) as upstream, _serve("llm_judge", base_url=upstream, max_retries=0) as url:
        assert probe.score("llm_judge", url) == "expected rewards [1.0, 0.0], got [1.0, 1.0]"


def test_the_probe_reports_an_http_error_and_a_dead_port():
    with _serve("regex_format") as url:
        why = probe.score("math_equiv", url)  # answer_tag is no regex_format parameter: a 422
    assert why.startswith("HTTP 422")
    assert probe.main(["score", "regex_format", f"http://127.0.0.1:{probe.free_port()}"]) == 1


@pytest.mark.slow
def test_clip_cider_scores_the_probe_image_with_random_weights(tmp_path, capsys):
    from tests.services.clip_cider.support import TINY_NAME, write_tiny_config

    config = write_tiny_config(tmp_path)
    with _serve("clip_cider", clip_model=TINY_NAME, clip_pretrained="", clip_model_config=config,
                clip_device="cpu") as url:
        assert probe.score("clip_cider", url) is None
    assert f"clip {TINY_NAME} random_init=True" in capsys.readouterr().out


def test_fake_upstream_grades_the_judge_prompt_markers():
    prompt = "<<<COMPLETION a1>>>\nso <answer> Paris </answer>\n<<<END COMPLETION a1>>>\n" \
             "<<<REFERENCE a1>>>\nparis\n<<<END REFERENCE a1>>>"
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}]}
    assert fake_openai.grade(body) == "1"
    body["messages"][0]["content"][0]["text"] = prompt.replace("Paris", "Rome")
    assert fake_openai.grade(body) == "0"


def test_the_probe_png_decodes():
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(probe.png(16, 8)))
    img.load()
    assert img.size == (16, 8) and img.mode == "RGB"


@pytest.mark.parametrize("path", sorted(CHECK_DIR.glob("*.yml")), ids=lambda p: p.name)
def test_override_files_are_valid_and_name_services_of_the_compose_file(path: Path):
    override = yaml.safe_load(path.read_text())
    errors = list(jsonschema.Draft7Validator(json.loads(COMPOSE_SPEC.read_text())).iter_errors(override))
    assert not errors, [e.message for e in errors]
    own = set(raw_compose()["services"]) | {"fake_openai", "clip_offline"}
    assert set(override["services"]) <= own, f"{path.name} names services docker-compose.yml lacks"


def test_the_check_overrides_build_the_trainer_layers_on_the_local_python_base():
    trainer = yaml.safe_load((CHECK_DIR / "compose.yml").read_text())["services"]["trainer"]["build"]
    assert trainer["args"]["BASE_IMAGE"].startswith("python:3.11-slim")
    assert trainer["target"].endswith(":-resolve}")
    judge = yaml.safe_load((CHECK_DIR / "compose.yml").read_text())["services"]["llm_judge"]
    assert judge["environment"]["LLM_JUDGE_BASE_URL"] == "http://fake_openai:8000/v1"


def test_the_script_parses_and_uses_files_that_exist():
    assert os.access(SCRIPT, os.X_OK)
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    text = SCRIPT.read_text()
    for name in ("compose.yml", "probe.py"):
        assert f'"$HERE/{name}"' in text and (CHECK_DIR / name).is_file()
    assert "CLIP_CIDER_CLIP_PRETRAINED=" in text  # random weights: no download on a machine without a hub


def test_readme_names_the_script():
    readme = (ROOT / "README.md").read_text()
    stack = readme[readme.index("## The stack"):]
    assert "scripts/stack_check.sh" in stack[: stack.index("\n## ", 3)]


def test_the_offline_clip_is_clip_cider_with_real_weights_no_cache_and_a_refusing_hub():
    offline = yaml.safe_load((CHECK_DIR / "compose.yml").read_text())["services"]["clip_offline"]
    clip = raw_compose()["services"]["clip_cider"]
    assert offline["command"] == clip["command"] and offline["profiles"] == ["offline-check"]
    assert offline["restart"] == "unless-stopped" and offline["init"] is True  # as the real one
    env = offline["environment"]
    assert set(env) - env_names(settings_class("clip_cider")) <= {"HF_HOME", "HF_ENDPOINT", "OMP_NUM_THREADS"}
    assert env["CLIP_CIDER_CLIP_PRETRAINED"] == "openai" and env["HF_ENDPOINT"].startswith("http://127.0.0.1:")
    text = SCRIPT.read_text()
    assert f"OFFLINE_CACHE={env['CLIP_CIDER_CLIP_CACHE_DIR']} " in text
    assert 'step "clip offline" offline_clip' in text and "--profile offline-check down" in text


@pytest.mark.slow
def test_the_offline_probe_reads_the_services_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{probe.free_port()}")
    cache = str(tmp_path / "no-weights")
    with _serve("clip_cider", clip_model="ViT-B-32", clip_pretrained="openai", clip_cache_dir=cache,
                clip_device="cpu") as url:
        assert probe.offline(url, cache, wait_s=60) is None
        assert "Fix one of" in capsys.readouterr().out
        assert probe.offline(url, "/elsewhere", wait_s=2).startswith("no offline reason on /readyz")
    from tests.services.clip_cider.support import TINY_NAME, write_tiny_config

    with _serve("clip_cider", clip_model=TINY_NAME, clip_pretrained="",
                clip_model_config=write_tiny_config(tmp_path), clip_device="cpu") as url:
        assert probe.offline(url, cache, wait_s=2) == "/readyz is 200: ready without weights or hub"
