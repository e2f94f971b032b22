"""The stack starts where users are: a 2-CPU laptop, Docker Engine 20.10 with Compose v2, PyPI as
the only index, the legacy builder. Each test reads the files for one defect a real engine showed
(issue 15) and would fail on the file as it was."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.support import (
    COMPOSE_FILE,
    ROOT,
    Dockerfile,
    dockerfile,
    env_example,
    interpolate,
    raw_compose,
    resolved_compose,
    shell_commands,
)

RAW = raw_compose()["services"]
DEFAULT_PROFILE = sorted(n for n, s in RAW.items() if not s.get("profiles"))
REWARD_SERVICES = ["clip_cider", "llm_judge", "math_equiv", "regex_format", "vqa_accuracy"]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
COMPOSE_FILES = [COMPOSE_FILE, *sorted((ROOT / "docker").rglob("*.yml"))]


def _uses_gpu(service: dict) -> bool:
    return bool(service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices"))


def _cuda_stages(df: Dockerfile, built: list[str]) -> list[str]:
    """Stages among `built` that are CUDA ones, by name or by a CUDA base image. (Which torch a
    stage installs is the torch index's business: the tests below.)"""
    args = df.arg_defaults()
    bad = []
    for base, name, _body in df.stage_bodies():
        if name not in built:
            continue
        base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), base)
        if "cuda" in name.lower() or "nvidia/cuda" in base:
            bad.append(name)
    return bad


# --- the legacy builder builds every stage up to the target ----------------------------------

OLD_CLIP_LAYOUT = """
FROM python:3.11-slim-bookworm AS base
FROM base AS build-cpu
FROM base AS build-cuda
FROM python:3.11-slim-bookworm AS runtime
FROM runtime AS cuda
FROM runtime AS cpu
"""


def test_the_stage_check_catches_a_cpu_target_after_cuda_stages():
    old = Dockerfile(Path("old"), OLD_CLIP_LAYOUT)
    assert _cuda_stages(old, old.legacy_build("cpu")) == ["build-cuda", "cuda"]


@pytest.mark.parametrize("name", [n for n, s in RAW.items() if "build" in s and not _uses_gpu(s)])
def test_a_cpu_service_build_runs_no_cuda_stage_under_any_builder(name):
    build = resolved_compose()["services"][name]["build"]
    df = dockerfile(build["dockerfile"])
    assert _cuda_stages(df, df.legacy_build(build.get("target"))) == []


def test_the_clip_images_differ_only_by_the_torch_index():
    services = resolved_compose()["services"]
    cpu, gpu = services["clip_cider"]["build"], services["clip_cider_gpu"]["build"]
    assert cpu["args"]["TORCH_INDEX_URL"] == CPU_INDEX == dockerfile(cpu["dockerfile"]).arg_defaults()["TORCH_INDEX_URL"]
    assert {k: v for k, v in cpu.items() if k != "args"} == {k: v for k, v in gpu.items() if k != "args"}


# --- the torch index: a build argument, PyPI as the fallback ---------------------------------

def _torch_run() -> str:
    (run,) = [rest for word, rest in dockerfile("docker/clip.Dockerfile").instructions
              if word == "RUN" and "TORCH_INDEX_URL" in rest]
    return run


def _run_with_fake_pip(tmp_path: Path, index: str) -> tuple[list[list[str]], str]:
    """The torch RUN line under /bin/sh, as Docker runs it, with a pip that records its arguments
    and cannot reach https://unreachable.invalid. Returns pip's calls and the line's stderr."""
    calls = tmp_path / "calls"
    pip = tmp_path / "pip"
    pip.write_text('#!/bin/sh\nprintf "%s\\n" "$*" >> "$CALLS"\n'
                   'case "$*" in *unreachable.invalid*) exit 1 ;; esac\nexit 0\n')
    pip.chmod(pip.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "CALLS": str(calls), "TORCH_INDEX_URL": index}
    done = subprocess.run(["/bin/sh", "-c", _torch_run()], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [line.split() for line in lines], done.stderr


def test_a_reachable_index_gives_torch_from_it_alone(tmp_path):
    calls, stderr = _run_with_fake_pip(tmp_path, CPU_INDEX)
    assert len(calls) == 1 and calls[0][calls[0].index("--index-url") + 1] == CPU_INDEX
    assert stderr == ""


def test_an_unreachable_index_falls_back_to_pypi_and_says_so(tmp_path):
    calls, stderr = _run_with_fake_pip(tmp_path, "https://unreachable.invalid/whl/cpu")
    assert len(calls) == 2 and "--index-url" not in calls[1]
    assert {"torch==2.14.1", "torchvision==0.29.1"} <= set(calls[1])
    assert "PyPI" in stderr and "CUDA" in stderr


@pytest.mark.parametrize("index", ["", "https://pypi.org/simple"])
def test_an_empty_or_pypi_index_goes_to_pypi_directly(tmp_path, index):
    calls, _ = _run_with_fake_pip(tmp_path, index)
    assert len(calls) == 1 and "--index-url" not in calls[0]


def test_the_torch_line_parses_as_installs_of_the_pinned_wheels():
    installs = [c for c in shell_commands(_torch_run()) if c[:2] == ["pip", "install"]]
    assert [c[-2:] for c in installs] == [["torch==2.14.1", "torchvision==0.29.1"]] * 2


# --- limits: from variables, defaults that start on 2 CPUs ------------------------------------

@pytest.mark.parametrize("name", DEFAULT_PROFILE)
def test_default_limits_fit_two_cpus(name):
    for env in ({}, env_example()):  # the file's defaults, and .env.example copied to .env
        limits = resolved_compose(env)["services"][name]["deploy"]["resources"]["limits"]
        assert 0 < float(limits["cpus"]) <= 2, f"{name}: {limits['cpus']} CPUs refuses to start on a 2-CPU host"


@pytest.mark.parametrize("name", REWARD_SERVICES)
def test_limits_come_from_variables(name):
    raw_limits = RAW[name]["deploy"]["resources"]["limits"]
    for key in ("cpus", "memory"):
        assert re.fullmatch(r"\$\{\w+:-[^}]+\}", str(raw_limits[key])), f"{name}.{key} = {raw_limits[key]!r}"


def test_clip_cider_runs_as_many_torch_threads_as_it_has_cpus():
    clip = RAW["clip_cider"]
    assert clip["environment"]["OMP_NUM_THREADS"] == clip["deploy"]["resources"]["limits"]["cpus"]


# --- empty values that mean something stay empty ----------------------------------------------

HOST_PORT_VARS = sorted(set(re.findall(r"\$\{(\w+_HOST_PORT)", COMPOSE_FILE.read_text())))
MEANINGFUL_EMPTY = ["CLIP_CIDER_CLIP_PRETRAINED", "CLIP_CUDA_TORCH_INDEX_URL", "CLIP_TORCH_INDEX_URL", *HOST_PORT_VARS]


@pytest.mark.parametrize("var", MEANINGFUL_EMPTY)
def test_an_empty_value_is_read_with_dash_not_colon_dash(var):
    text = COMPOSE_FILE.read_text()
    uses = re.findall(rf"\$\{{{var}(:?-)", text)
    assert uses and set(uses) == {"-"}, f"${{{var}:-...}} turns an empty value into the default"


def test_an_empty_pretrained_reaches_clip_cider_as_random_weights():
    from services.clip_cider.settings import ClipCiderSettings

    env = resolved_compose({**env_example(), "CLIP_CIDER_CLIP_PRETRAINED": ""})["services"]["clip_cider"]["environment"]
    assert env["CLIP_CIDER_CLIP_PRETRAINED"] == ""
    settings = ClipCiderSettings(**{k.removeprefix("CLIP_CIDER_").lower(): v for k, v in env.items()
                                    if k.startswith("CLIP_CIDER_")})
    assert settings.clip_pretrained == ""
    unset = resolved_compose({k: v for k, v in env_example().items() if k != "CLIP_CIDER_CLIP_PRETRAINED"})
    assert unset["services"]["clip_cider"]["environment"]["CLIP_CIDER_CLIP_PRETRAINED"] == "openai"


def test_variables_empty_in_env_example_keep_their_empty_value():
    empty = {k for k, v in env_example().items() if v == "" and k != "OPENROUTER_API_KEY"}
    for m in re.finditer(r"\$\{(\w+):-([^}]*)\}", COMPOSE_FILE.read_text()):
        assert not (m.group(1) in empty and m.group(2)), f"{m.group(0)}: an empty {m.group(1)} would become {m.group(2)!r}"


# --- Engine 20.10 / API 1.41 and Compose v2 ---------------------------------------------------

NEWER_ENGINE_ONLY = {"start_interval": "Engine 25", "--start-interval": "Engine 25"}


@pytest.mark.parametrize("path", [*COMPOSE_FILES, *sorted(ROOT.glob("Dockerfile")),
                                  *sorted((ROOT / "docker").glob("*.Dockerfile"))], ids=lambda p: p.name)
def test_nothing_needs_an_engine_newer_than_20_10(path):
    text = path.read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    found = [key for key in NEWER_ENGINE_ONLY if any(key in line for line in lines)]
    assert not found, f"{path.name} uses {found}, refused before {[NEWER_ENGINE_ONLY[k] for k in found]}"


def test_the_docs_state_the_versions_the_stack_runs_on():
    docs = (ROOT / "docs" / "stack.md").read_text()
    for fact in ("Engine 20.10", "API 1.41", "Compose v2", "v2.40.3", "start_interval"):
        assert fact in docs, f"docs/stack.md does not state {fact!r}"
    header = COMPOSE_FILE.read_text().split("\nname:")[0]
    assert "Engine" in header and "Compose v2" in header and "20.10" in header


# --- no folder created in the checkout --------------------------------------------------------

@pytest.mark.parametrize("name", sorted(RAW))
def test_no_bind_mount_makes_docker_create_a_folder_in_the_checkout(name):
    for volume in RAW[name].get("volumes", []):
        if isinstance(volume, str):
            source = volume.split(":")[0]
            if source.startswith((".", "/", "~")):  # a host path, not a named volume
                assert (ROOT / source).exists() and _tracked(source), f"{name}: Docker creates {source} as root"
        elif volume.get("type") == "bind":
            assert volume.get("bind", {}).get("create_host_path") is False, f"{name}: {volume['source']}"


def _tracked(path: str) -> bool:
    """Committed, so a fresh clone has it too; outside a git checkout, present is all we can tell."""
    done = subprocess.run(["git", "ls-files", "--error-unmatch", path], cwd=ROOT, capture_output=True, text=True)
    if "not a git repository" in done.stderr:
        return (ROOT / path).exists()
    return done.returncode == 0


def test_the_default_profile_mounts_no_data_folder():
    for name in DEFAULT_PROFILE:
        sources = [v if isinstance(v, str) else v.get("source", "") for v in RAW[name].get("volumes", [])]
        assert not any(s.lstrip("./").startswith("data") for s in sources), f"{name} mounts data/"


# --- restarts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DEFAULT_PROFILE)
def test_a_crash_restarts_and_the_story_is_documented(name):
    service = resolved_compose()["services"][name]
    assert service["restart"] == "unless-stopped" and service["init"] is True
    docs = (ROOT / "docs" / "stack.md").read_text()
    restarts = docs[docs.index("## Restarts"):]
    assert "docker kill" in restarts and "_HOST_PORT" in restarts


def test_a_pinned_host_port_interpolates_to_the_published_port():
    port = interpolate(RAW["regex_format"]["ports"], {"REGEX_FORMAT_HOST_PORT": "18100"})
    assert port[0]["published"] == "18100"


# --- the trainer's Python layers build on a plain Python base ----------------------------------

def test_the_trainer_resolves_exactly_what_it_then_installs():
    df = dockerfile("docker/trainer.Dockerfile")
    stages = {name: body for _, name, body in df.stage_bodies()}
    assert df.legacy_build("resolve") == ["system", "resolve"], "resolve must not need the install stages"
    resolve = [c for word, rest in stages["resolve"] if word == "RUN" for c in shell_commands(rest)
               if c[:3] == ["uv", "pip", "install"]]
    install = [c for word, rest in stages["build"] if word == "RUN" for c in shell_commands(rest)
               if c[:3] == ["uv", "pip", "install"]]
    assert [c for c in resolve if "--dry-run" in c] == resolve and len(resolve) == 1
    assert [a for a in resolve[0] if a != "--dry-run"] == install[0]


def test_the_trainer_base_is_pinned_cuda_and_the_python_a_build_argument():
    df = dockerfile("docker/trainer.Dockerfile")
    args = df.arg_defaults()
    assert re.fullmatch(r"nvidia/cuda:\d+\.\d+\.\d+-cudnn-devel-ubuntu\d+\.\d+", args["BASE_IMAGE"])
    assert args["PYTHON"] == "python3.12"
    system = next(body for _, name, body in df.stage_bodies() if name == "system")
    apt = " ".join(rest for word, rest in system if word == "RUN")
    assert "${PYTHON} ${PYTHON}-venv ${PYTHON}-dev" in apt
