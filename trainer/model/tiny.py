"""`tiny://<family>` models for the CPU demo, tests and benchmarks: built once per cache, then reused.

Nothing is downloaded: the tokenizer is a byte-level BPE trained here (`tiny_common`), the weights
are random (seeded), and each architecture is the real one at toy size: Qwen2.5-VL in `tiny_qwen`,
SmolVLM2, Gemma 3 and InternVL3 in `tiny_families`, each at its checkpoint's image geometry.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Bump when the build changes, so stale caches are rebuilt instead of reused.
TINY_VERSION = "2"
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "tiny-qwen2.5-vl"
# `tiny://<family>` model ids; every family but Qwen2.5-VL is built by trainer.model.tiny_families.
FAMILIES = ("qwen2.5-vl", "smolvlm2", "gemma3", "internvl3")


def tiny_model_dir(cache_root: str | Path | None = None, family: str = "qwen2.5-vl") -> Path:
    """The directory of a built tiny model (model + processor), building it once per cache.

    `family` is one of FAMILIES; the Qwen2.5-VL model lives at the cache root itself, the others in
    a sub-folder named after the family.
    """
    if family not in FAMILIES:
        raise ValueError(f"no tiny model for {family!r}; choose one of {', '.join(FAMILIES)}")
    root = Path(cache_root or os.environ.get("REWARDSTACK_TINY_CACHE") or DEFAULT_CACHE)
    if family != "qwen2.5-vl":
        root = root / family
    target = root / f"v{TINY_VERSION}"
    if (target / "config.json").exists() and (target / "processor_config.json").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    return build_atomically(target, _builder(family))


def build_atomically(target: Path, build: Callable[[Path], Any]) -> Path:
    """`build(tmp)` into a folder beside `target`, then rename it into place: concurrent test
    sessions never see half a model, and the first finished build wins."""
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        build(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _builder(family: str) -> Callable[[Path], Any]:
    if family == "qwen2.5-vl":
        from trainer.model.tiny_qwen import build_tiny_vlm

        return build_tiny_vlm
    from trainer.model.tiny_families import BUILDERS

    return BUILDERS[family]
