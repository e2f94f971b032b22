"""What a wheel user gets: the example file, the recipes and the LICENSE inside it; `--version`."""

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

from rewardstack.cli import main
from tests.helpers import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the sources, so the build leaves nothing in the checkout."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    for package in ("proto", "services", "trainer", "integrations", "rewardstack"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(src)], check=True, timeout=300)
    (path,) = out.glob("rewardstack-*.whl")
    return path


@pytest.mark.slow
def test_the_wheel_holds_the_example_the_recipes_and_the_license(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "trainer/examples/completions.jsonl" in names
    assert "trainer/recipes/tiny-cpu.yaml" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    license_text = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("licenses/LICENSE")))
    assert b"Apache License" in license_text and b"Version 2.0" in license_text


@pytest.mark.slow
def test_rewardstack_example_runs_from_the_unpacked_wheel(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import sys, trainer, rewardstack, integrations\n"
            "for m in (trainer, rewardstack, integrations): assert m.__file__.startswith(sys.argv[1]), m.__file__\n"
            "from rewardstack.cli import main; sys.exit(main(['example', '--out', 'scored.jsonl']))")
    proc = subprocess.run([sys.executable, "-c", code, str(site)], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(site)}, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len((tmp_path / "scored.jsonl").read_text().splitlines()) == 10


def test_version_is_the_project_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"rewardstack {PYPROJECT['project']['version']}"


def test_license_file_is_the_one_pyproject_names():
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
