"""Readers for the deployment files (compose, .env.example, Dockerfiles, pyproject, manifests),
shared by the tests in tests/deploy. No Docker engine or cluster is needed: everything is parsed."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata as md
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement

# The Dockerfile readers live in their own module; imported here so `support` stays one import.
from tests.deploy.dockerfiles import Dockerfile, dockerfile, shell_commands  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
# A copy of ../shared/compose-spec.json, the Compose Specification's JSON schema (tests/data/README.md).
COMPOSE_SPEC = ROOT / "tests" / "data" / "compose-spec.json"
K8S_DIR = ROOT / "deploy" / "k8s"
FIRST_PARTY = {"proto", "services", "trainer", "integrations", "rewardstack"}

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class MissingVariable(ValueError):
    """A `${VAR:?message}` whose variable is unset or empty, as `docker compose` reports it."""


def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_variables() -> set[str]:
    return set(m.group(1) for m in _VAR.finditer(COMPOSE_FILE.read_text()))


def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        current = env.get(name)
        unset_or_empty = not current
        if op == ":?" and unset_or_empty:
            raise MissingVariable(f"{name}: {arg}")
        if op == ":-" and unset_or_empty:
            return arg
        if op == "-" and current is None:
            return arg
        return current or ""

    return _VAR.sub(one, value).replace("$$", "$")


def resolved_compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """docker-compose.yml as `docker compose config` would see it with .env.example filled in."""
    values = env_example() if env is None else env
    values = {**values, "OPENROUTER_API_KEY": values.get("OPENROUTER_API_KEY") or "sk-test"}
    return interpolate(raw_compose(), values)


def mount_target_source(volume: str | dict[str, Any]) -> tuple[str, str]:
    """(target in the container, source) of a volume in short (`src:dst[:ro]`) or long syntax."""
    if isinstance(volume, dict):
        return volume["target"], volume.get("source", "")
    source, target = volume.split(":")[:2]
    return target, source


def argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def option(args: list[str], name: str) -> str | None:
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


@dataclass(frozen=True)
class AsgiTarget:
    module: str
    attr: str
    port: int

    @property
    def service(self) -> str:
        """The service package the module belongs to: services.<service>.main."""
        parts = self.module.split(".")
        return parts[1] if len(parts) == 3 and parts[0] == "services" else ""


def uvicorn_target(command: str | list[str]) -> AsgiTarget | None:
    args = argv(command)
    if not args or args[0] != "uvicorn":
        return None
    target = next(a for a in args[1:] if not a.startswith("-") and ":" in a)
    module, attr = target.split(":")
    return AsgiTarget(module, attr, int(option(args, "--port") or 8000))


@cache
def load_app(module: str, attr: str):
    """Import an ASGI module as uvicorn would and return its app object."""
    return getattr(importlib.import_module(module), attr)


def route_paths(app) -> set[str]:
    return {getattr(r, "path", None) for r in app.routes} - {None}


def settings_class(service: str) -> type:
    """The ServiceSettings subclass in services/<service>/settings.py (the one with its prefix)."""
    from services.common.settings import ServiceSettings

    mod = importlib.import_module(f"services.{service}.settings")
    found = [c for c in vars(mod).values()
             if isinstance(c, type) and issubclass(c, ServiceSettings) and c is not ServiceSettings
             and c.__module__ == mod.__name__]
    assert len(found) == 1, f"services/{service}/settings.py defines {found}, expected one settings class"
    return found[0]


def env_names(settings_cls: type) -> set[str]:
    """Every environment variable name the settings class reads (prefix + field, or its aliases)."""
    prefix = settings_cls.model_config.get("env_prefix", "")
    names = set()
    for name, field in settings_cls.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.add((prefix + name).upper())
        else:
            choices = getattr(alias, "choices", [alias])
            names.update(str(c).upper() for c in choices)
    return names


def healthcheck_url(test: list[str] | str) -> str:
    text = " ".join(argv(test)) if isinstance(test, list) else test
    m = re.search(r"https?://[^'\" ]+", text)
    assert m, f"no URL in healthcheck {test!r}"
    return m.group(0)


# --- pyproject extras and Dockerfiles ---------------------------------------------------------

@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def extra_requirements(extras: set[str]) -> list[Requirement]:
    """The requirements `pip install ".[extras]"` asks for, self-references expanded."""
    project = pyproject()["project"]
    name = project["name"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in project["optional-dependencies"][extra]:
            req = Requirement(text)
            if req.name == name:
                todo.extend(req.extras)
            else:
                reqs.append(req)
    return reqs


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_closure(names: set[str]) -> set[str]:
    """Distributions reachable from `names` through the metadata of what this venv has installed
    (a distribution not installed here contributes itself only)."""
    out, todo = set(), [canonical(n) for n in names]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonical(req.name))
    return out


def third_party_imports(paths: list[Path]) -> set[str]:
    """Top-level names of the non-stdlib, non-first-party modules imported anywhere in `paths`."""
    names: set[str] = set()
    for path in paths:
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            for node in ast.walk(ast.parse(file.read_text(), str(file))):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in FIRST_PARTY}


@cache
def _packages_distributions() -> dict[str, list[str]]:
    return md.packages_distributions()


def distributions_of(module: str) -> set[str]:
    """The distributions that provide an importable top-level module; a module not installed here
    (vllm, say) is taken to come from the distribution of the same name."""
    return {canonical(d) for d in _packages_distributions().get(module, [module])}


# --- Kubernetes -------------------------------------------------------------------------------

def kustomizations() -> list[Path]:
    return sorted(K8S_DIR.rglob("kustomization.yaml"))


def kustomize_data_files(kustomization: Path) -> set[Path]:
    """Files a kustomization turns into ConfigMaps/Secrets: data, not manifests."""
    k = yaml.safe_load(kustomization.read_text())
    out = set()
    for gen in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
        for f in gen.get("files", []) + gen.get("envs", []):
            out.add((kustomization.parent / f.split("=")[-1]).resolve())
    return out


def k8s_manifests() -> list[tuple[Path, dict[str, Any]]]:
    data = set().union(*(kustomize_data_files(k) for k in kustomizations()))
    out = []
    for path in sorted(K8S_DIR.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or path.resolve() in data:
            continue
        out.extend((path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return out
