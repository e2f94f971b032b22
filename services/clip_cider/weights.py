"""Are clip_cider's CLIP weights on disk? Answered before the service starts, without loading them.

`python -m services.clip_cider.weights` reads the service's settings (CLIP_CIDER_* variables),
prints nothing and exits 0 when the weights are there (or need no download: random weights, a local
checkpoint, a reachable hub), else prints why and the fix and exits 1. `rewardstack serve` runs it
in a child process, as it runs the service, so that a missing download is reported up front rather
than as a service that dies while starting.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from services.clip_cider.settings import ClipCiderSettings


def weights_problem(settings: ClipCiderSettings) -> str | None:
    """None when the weights can be loaded here; else why not, and the fix.

    Mirrors open_clip's own lookup: a checkpoint file, the Hugging Face cache, then the folder
    URL downloads go to (~/.cache/clip unless `clip_cache_dir`).
    """
    tag = settings.clip_pretrained
    if not tag or Path(tag).is_file():
        return None
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(settings.clip_model, tag)
    if not cfg:
        return (f"open_clip has no weights {tag!r} for {settings.clip_model}; set CLIP_CIDER_CLIP_PRETRAINED "
                "to one of open_clip.list_pretrained_tags_by_model() or to a checkpoint file")
    cache_dir = str(settings.clip_cache_dir) if settings.clip_cache_dir else None
    if _in_hf_cache(cfg.get("hf_hub", ""), cache_dir) or _in_url_cache(cfg.get("url", ""), cache_dir):
        return None
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or not _hub_reachable():
        return (f"CLIP weights {settings.clip_model}/{tag} are not cached and the hub cannot be reached; "
                "download them once online, or set CLIP_CIDER_CLIP_PRETRAINED to a checkpoint file "
                "(an empty value gives random weights, for tests only)")
    return None


def _in_hf_cache(hf_hub: str, cache_dir: str | None) -> bool:
    if not hf_hub:
        return False
    from huggingface_hub import try_to_load_from_cache

    repo, filename = os.path.split(hf_hub)
    names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    if filename.endswith(".bin"):
        names.insert(0, filename.removesuffix(".bin") + ".safetensors")
    return any(isinstance(try_to_load_from_cache(repo, n, cache_dir=cache_dir), str) for n in names)


def _in_url_cache(url: str, cache_dir: str | None) -> bool:
    if not url:
        return False
    folder = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "clip"
    return (folder / os.path.basename(url)).is_file()


def _hub_reachable(timeout_s: float = 2.0) -> bool:
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


if __name__ == "__main__":
    try:
        problem = weights_problem(ClipCiderSettings())
    except ValueError as exc:  # pydantic's ValidationError: a CLIP_CIDER_* variable is wrong
        problem = f"invalid CLIP_CIDER_* settings: {exc}"
    if problem:
        print(problem)
    sys.exit(1 if problem else 0)
