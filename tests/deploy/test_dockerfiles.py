"""The images, checked by parsing: each installs what the code it runs imports, is multi-stage,
non-root and pinned, and the build context keeps outputs, caches, venvs and secrets out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.deploy.support import (
    ROOT,
    argv,
    canonical,
    dependency_closure,
    distributions_of,
    dockerfile,
    extra_requirements,
    pyproject,
    resolved_compose,
    third_party_imports,
    uvicorn_target,
)

SERVICES = resolved_compose()["services"]
DOCKERFILES = ["Dockerfile", "docker/clip.Dockerfile", "docker/trainer.Dockerfile"]


def _runs(dockerfile_path: str) -> list[Path]:
    """The code the compose services built from this Dockerfile run."""
    paths = {ROOT / "proto"}
    for service in SERVICES.values():
        if service["build"]["dockerfile"] != dockerfile_path:
            continue
        target = uvicorn_target(service["command"])
        if target:
            paths |= {ROOT / "services" / "common", ROOT / "services" / target.service}
        elif argv(service["command"])[0] == "rewardstack":
            # `rewardstack gateway` serves the services package in its own process, so it runs
            # where the services extra is installed: compose runs the gateway from that image.
            command = sorted(set((ROOT / "rewardstack").rglob("*.py")) - {ROOT / "rewardstack" / "gateway.py"})
            paths |= {*command, ROOT / "trainer", ROOT / "integrations"}  # the trainer builds rewards with it
    return sorted(paths)


def _installed(dockerfile_path: str) -> set[str]:
    extras, named = dockerfile(dockerfile_path).pip_installs()
    wanted = {r.name for r in extra_requirements(extras)} | {r.name for r in named}
    return dependency_closure(wanted)


@pytest.mark.parametrize("path", DOCKERFILES)
def test_every_compose_service_builds_from_a_known_dockerfile(path):
    assert (ROOT / path).is_file()
    assert any(s["build"]["dockerfile"] == path for s in SERVICES.values())
    assert {s["build"]["dockerfile"] for s in SERVICES.values()} <= set(DOCKERFILES)


@pytest.mark.parametrize("path", DOCKERFILES)
def test_installed_packages_cover_the_imports_of_what_the_image_runs(path):
    installed = _installed(path)
    runs = _runs(path)
    missing = {m for m in third_party_imports(runs) if not distributions_of(m) & installed}
    assert not missing, f"{path} runs {[str(p.relative_to(ROOT)) for p in runs]}, which import {sorted(missing)}"


def test_the_services_image_has_no_torch():
    assert "torch" not in _installed("Dockerfile")


def test_trainer_image_has_trl_for_the_generation_server_and_deepspeed():
    installed = _installed("docker/trainer.Dockerfile")
    assert {"trl", "vllm", "deepspeed", "accelerate"} <= installed
    assert argv(SERVICES["generation"]["command"])[0] == "trl"


def test_clip_cpu_wheels_are_the_clip_extras_pins():
    _, named = dockerfile("docker/clip.Dockerfile").pip_installs()
    extra = {r.name: r.specifier for r in extra_requirements({"clip"}) if r.name in {"torch", "torchvision"}}
    assert {r.name: r.specifier for r in named} == extra


def _recorded_vllm_requirements() -> tuple[str, dict[str, Requirement]]:
    """From docker/vllm-overrides.txt: the lines `vllm==X requires <requirement>`."""
    version, reqs = None, {}
    for line in (ROOT / "docker" / "vllm-overrides.txt").read_text().splitlines():
        text = line.lstrip("# ").strip()
        if " requires " in text:
            pin, _, req = text.partition(" requires ")
            version = pin.split("==")[1]
            reqs[Requirement(req).name] = Requirement(req)
    return version, reqs


def test_trainer_image_takes_torch_from_vllms_pins():
    version, recorded = _recorded_vllm_requirements()
    vllm_extra = [Requirement(r) for r in pyproject()["project"]["optional-dependencies"]["vllm"]]
    assert [str(r.specifier) for r in vllm_extra if r.name == "vllm"] == [f"=={version}"]
    overrides = [Requirement(line) for line in (ROOT / "docker" / "vllm-overrides.txt").read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
    for req in overrides:
        assert req.specifier == recorded[req.name].specifier, f"{req} is not what vLLM {version} pins"
    assert {r.name for r in overrides} == {"torch", "torchvision"}
    run_lines = " ".join(rest for word, rest in dockerfile("docker/trainer.Dockerfile").instructions if word == "RUN")
    assert '--override docker/vllm-overrides.txt ".[vllm]"' in run_lines


def test_the_trainer_extras_transformers_pin_is_inside_vllms_range():
    _, recorded = _recorded_vllm_requirements()
    pin = next(r for r in extra_requirements({"trainer"}) if r.name == "transformers")
    (exact,) = [Version(s.version) for s in pin.specifier]
    assert exact in recorded["transformers"].specifier


@pytest.mark.parametrize("path", DOCKERFILES)
def test_image_is_multi_stage_non_root_and_pinned(path):
    df = dockerfile(path)
    stages = df.stages()
    assert len(stages) >= 2, "build tools and caches stay in a build stage"
    local = {name for _, name in stages}
    for image, _ in stages:
        if image not in local:
            name, _, tag = image.rpartition(":")
            assert name and tag and tag != "latest", f"{path}: base {image} is not pinned by tag"
    users = [rest for word, rest in df.instructions if word == "USER"]
    assert users and users[-1] not in {"root", "0"}, f"{path}: the final user must not be root"


def _pattern(pat: str) -> re.Pattern:
    """A .dockerignore pattern as a regex: `*` stays within one path segment, `**` spans any."""
    out, i = "", 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pat.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            out, i = out + {"*": "[^/]*", "?": "[^/]"}.get(pat[i], re.escape(pat[i])), i + 1
    return re.compile(out)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context drops `path`: it or a parent matches, the last matching pattern
    wins, and `!` re-includes."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pat in patterns:
        rx = _pattern(pat.lstrip("!"))
        if any(rx.fullmatch(p) for p in prefixes):
            result = not pat.startswith("!")
    return result


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("path", [".venv/bin/python", "outputs/run/adapter/x.safetensors", ".cache/tiny/model.safetensors",
                                  ".env", ".git/HEAD", "services/common/__pycache__/app.cpython-311.pyc",
                                  "tests/conftest.py", "data/coco/x.jpg"])
def test_dockerignore_keeps_out(path):
    assert _ignored(path, _dockerignore())


@pytest.mark.parametrize("path", DOCKERFILES)
def test_dockerignore_keeps_what_the_dockerfile_copies(path):
    sources = [src for word, rest in dockerfile(path).instructions if word == "COPY" and "--from" not in rest
               for src in rest.split()[:-1]]
    assert sources
    for src in sources:
        assert not _ignored(src.rstrip("/"), _dockerignore()), f"{path} copies {src}, which .dockerignore drops"
        assert (ROOT / src).exists()
    assert not _ignored("trainer/data/build.py", _dockerignore()), "`data` must only drop the top-level folder"


def test_no_dockerfile_installs_an_unpinned_heavy_package():
    for path in DOCKERFILES:
        _, named = dockerfile(path).pip_installs()
        loose = [str(r) for r in named if canonical(r.name) not in {"setuptools", "wheel"} and not r.specifier]
        assert not loose, f"{path} installs {loose} without a version"
