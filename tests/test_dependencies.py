"""docs/DESIGN.md's rules for the house, checked on every run by reading each module's imports:
who may import whom, no import cycles, at most 12 modules in a folder, no module over 300 lines."""

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir()
                  if p.is_dir() and (p / "__init__.py").exists() and p.name != "common")
MAX_MODULES_PER_FOLDER = 12  # __init__.py not counted
MAX_LINES = 300


def project_files(root: Path = ROOT) -> list[Path]:
    """Every Python file of the project: what git tracks, plus new files it does not ignore."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
                         cwd=root, capture_output=True, text=True, check=True).stdout
    return sorted(root / line for line in out.splitlines() if (root / line).exists())


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def import_targets(path: Path, known: set[str], root: Path = ROOT) -> set[str]:
    """The project modules a file imports: `from a import b` names a.b when b is a module, else a."""
    here = module_name(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != here:
                targets.add(name)
    return targets


def import_cycles(files: list[Path], root: Path = ROOT) -> list[list[str]]:
    """Groups of modules that import each other, directly or round a loop (Tarjan's components)."""
    known = {module_name(f, root) for f in files}
    graph = {module_name(f, root): import_targets(f, known, root) for f in files}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def crowded_folders(files: list[Path]) -> dict[str, int]:
    counts: dict[Path, int] = {}
    for f in files:
        if f.name != "__init__.py":
            counts[f.parent] = counts.get(f.parent, 0) + 1
    return {str(d): n for d, n in counts.items() if n > MAX_MODULES_PER_FOLDER}


def long_modules(files: list[Path]) -> dict[str, int]:
    lengths = {str(f): len(f.read_text().splitlines()) for f in files}
    return {f: n for f, n in lengths.items() if n > MAX_LINES}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def top(name: str, depth: int = 1) -> str:
    return ".".join(name.split(".")[:depth])


def test_the_packages_exist():
    assert {"regex_format", "math_equiv", "vqa_accuracy", "clip_cider", "llm_judge"} <= set(SERVICES)
    assert (ROOT / "rewardstack" / "__main__.py").exists()


@pytest.mark.parametrize("path", modules("proto"), ids=str)
def test_proto_imports_no_other_package_of_ours(path):
    assert not {m for m in imports(path) if top(m) in {"services", "trainer", "integrations", "rewardstack"}}


@pytest.mark.parametrize("path", modules("trainer"), ids=str)
def test_trainer_reaches_services_by_url_only_and_never_the_command(path):
    assert not {m for m in imports(path) if top(m) in {"services", "rewardstack"}}


@pytest.mark.parametrize("path", modules("rewardstack"), ids=str)
def test_the_command_starts_services_by_module_path_only(path):
    assert not {m for m in imports(path) if top(m) == "services"}


@pytest.mark.parametrize("path", modules("services"), ids=str)
def test_services_import_only_common_and_themselves(path):
    own = path.relative_to(ROOT / "services").parts[0]
    for module in imports(path):
        assert top(module) not in {"trainer", "integrations", "rewardstack"}, f"{path} imports {module}"
        if top(module) == "services" and module != "services":
            assert top(module, 2) in {"services.common", f"services.{own}"}, f"{path} imports {module}"


@pytest.mark.parametrize("path", modules("integrations"), ids=str)
def test_integrations_import_proto_only(path):
    assert not {m for m in imports(path) if top(m) in {"services", "trainer", "rewardstack"}}


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


def test_no_import_cycles():
    assert import_cycles(project_files()) == []


def test_no_folder_holds_more_than_twelve_modules():
    assert crowded_folders(project_files()) == {}


def test_no_module_is_over_300_lines():
    assert long_modules(project_files()) == {}


def _tree(root: Path, files: dict[str, str]) -> list[Path]:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return sorted(root.rglob("*.py"))


class TestTheChecksCanFail:
    def test_a_lazy_import_of_a_service_is_seen(self, tmp_path):
        bad = tmp_path / "bad.py"
        bad.write_text("def f():\n    from services.regex_format import scorer\n")
        assert "services.regex_format" in imports(bad)

    def test_a_loop_through_a_package_and_a_lazy_import_is_a_cycle(self, tmp_path):
        files = _tree(tmp_path, {"a/__init__.py": "", "a/x.py": "from a import y\n",
                                 "a/y.py": "def f():\n    import b.z\n", "b/__init__.py": "",
                                 "b/z.py": "from a.x import thing\n", "c.py": "import a.x\n"})
        assert import_cycles(files, tmp_path) == [["a.x", "a.y", "b.z"]]

    def test_relative_imports_are_followed(self, tmp_path):
        files = _tree(tmp_path, {"p/__init__.py": "", "p/m.py": "from . import n\n",
                                 "p/n.py": "from .m import f\n"})
        assert import_cycles(files, tmp_path) == [["p.m", "p.n"]]

    def test_a_package_that_re_exports_its_modules_is_no_cycle(self, tmp_path):
        files = _tree(tmp_path, {"r/__init__.py": "from r.schema import R\n",
                                 "r/schema.py": "from r.load import f\n", "r/load.py": "import yaml\n"})
        assert import_cycles(files, tmp_path) == []

    def test_thirteen_modules_crowd_a_folder_and_301_lines_are_long(self, tmp_path):
        files = _tree(tmp_path, {**{f"f/m{i}.py": "" for i in range(13)}, "f/__init__.py": "",
                                 "g/long.py": "x = 1\n" * 301, "g/ok.py": "x = 1\n" * 300})
        assert crowded_folders(files) == {str(tmp_path / "f"): 13}
        assert long_modules(files) == {str(tmp_path / "g" / "long.py"): 301}
