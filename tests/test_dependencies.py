"""docs/DESIGN.md's dependency rules, checked on every run by reading each module's imports."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir()
                  if p.is_dir() and (p / "__init__.py").exists() and p.name != "common")


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def top(name: str, depth: int = 1) -> str:
    return ".".join(name.split(".")[:depth])


def test_the_packages_exist():
    assert {"regex_format", "math_equiv", "vqa_accuracy", "clip_cider", "llm_judge"} <= set(SERVICES)


@pytest.mark.parametrize("path", modules("proto"), ids=str)
def test_proto_imports_neither_services_nor_trainer(path):
    assert not {m for m in imports(path) if top(m) in {"services", "trainer"}}


@pytest.mark.parametrize("path", modules("trainer"), ids=str)
def test_trainer_reaches_services_by_url_only(path):
    assert not {m for m in imports(path) if top(m) == "services"}


@pytest.mark.parametrize("path", modules("services"), ids=str)
def test_services_import_only_common_and_themselves(path):
    own = path.relative_to(ROOT / "services").parts[0]
    for module in imports(path):
        assert top(module) not in {"trainer", "integrations"}, f"{path} imports {module}"
        if top(module) == "services" and module != "services":
            assert top(module, 2) in {"services.common", f"services.{own}"}, f"{path} imports {module}"


@pytest.mark.parametrize("path", modules("integrations"), ids=str)
def test_integrations_import_proto_only(path):
    assert not {m for m in imports(path) if top(m) in {"services", "trainer"}}


@pytest.mark.parametrize("path", modules("services/gateway"), ids=str)
def test_the_gateway_reaches_services_through_proto_client_only(path):
    # It is the one service that calls others: by URL, with RewardClient, never a scorer import
    # nor a raw HTTP library of its own.
    for module in imports(path):
        assert top(module) not in {"httpx", "requests", "aiohttp", "urllib3"}, f"{path} imports {module}"


def test_the_trainer_builds_its_reward_functions_with_integrations():
    assert "integrations.trl" in imports(ROOT / "trainer" / "rewards.py")


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "gateway"])  # the gateway scores nothing
def test_scorer_never_imports_a_web_framework(service):
    for module in imports(ROOT / "services" / service / "scorer.py"):
        assert top(module) not in {"fastapi", "starlette", "uvicorn"}, module


def test_the_checks_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from services.regex_format import scorer\n")
    assert "services.regex_format" in imports(bad)
