"""Where clip_cider's CLIP weights come from: a file on disk, or a download that has a deadline.

`locate` finds weights on disk without any network call (random weights, a checkpoint file, or
the tag's file in the Hugging Face or URL cache). `fetch` downloads a tag's weights in a child
process, so a hub that refuses, hangs or crawls costs at most CLIP_CIDER_LOAD_TIMEOUT_S and the
service can stop at any moment (the child is killed, and dies with the service); when the weights
cannot be had it raises WeightsUnavailable, whose message names the tag, the cache and the fixes.

    python -m services.clip_cider.weights          # exit 0 when the weights can be loaded here,
                                                   # else print why and the fix, exit 1
    python -m services.clip_cider.weights fetch    # download them into the cache now (online),
                                                   # e.g. into compose's model volume; prints the path

Both read the service's settings (CLIP_CIDER_* variables). `rewardstack serve` runs the first.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from services.clip_cider.settings import ClipCiderSettings

log = logging.getLogger(__name__)

# What open_clip takes from a pretrained tag besides the file: its preprocessing.
_PREPROCESS_KEYS = {"mean": "image_mean", "std": "image_std", "interpolation": "image_interpolation",
                    "resize_mode": "image_resize_mode"}


class WeightsUnavailable(RuntimeError):
    """The weights are neither on disk nor downloadable; the message says what to do."""


@dataclass(frozen=True)
class LocalWeights:
    """Weights open_clip can build from with no network: a file (None: random), and a tag's preprocessing."""

    path: str | None
    preprocess: dict[str, Any] = field(default_factory=dict)  # create_model_and_transforms kwargs


def locate(model: str, tag: str, cache_dir: Path | None) -> LocalWeights | None:
    """The weights on disk, or None when `tag`'s file is in no cache (a download is needed).

    Mirrors open_clip's own lookup (the Hugging Face cache, safetensors first, then the folder URL
    downloads go to), so a cached file is found even where the hub cannot be reached.
    """
    if not tag:
        return LocalWeights(None)
    if Path(tag).is_file():
        return LocalWeights(tag)
    cfg = _pretrained_cfg(model, tag)
    cache = str(cache_dir) if cache_dir else None
    path = _in_hf_cache(cfg.get("hf_hub", ""), cache) or _in_url_cache(cfg.get("url", ""), cache)
    return _local(path, cfg) if path else None


def _local(path: str, cfg: dict[str, Any]) -> LocalWeights:
    return LocalWeights(path, {kw: cfg[k] for k, kw in _PREPROCESS_KEYS.items() if cfg.get(k) is not None})


def _pretrained_cfg(model: str, tag: str) -> dict[str, Any]:
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(model, tag)
    if not cfg:
        raise ValueError(f"open_clip has no weights {tag!r} for {model}; set CLIP_CIDER_CLIP_PRETRAINED to "
                         "one of open_clip.list_pretrained_tags_by_model() or to a checkpoint file")
    return dict(cfg)


def cache_path(cache_dir: Path | None) -> str:
    """Where downloads go: CLIP_CIDER_CLIP_CACHE_DIR, else the Hugging Face hub cache."""
    if cache_dir:
        return str(cache_dir)
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def unavailable(model: str, tag: str, cache_dir: Path | None, why: str) -> str:
    """The reason a service without its weights gives: what is missing, why, and the three fixes."""
    return (f"CLIP weights {model}/{tag} are not cached in {cache_path(cache_dir)} and cannot be "
            f"downloaded: {why}. Fix one of: (1) cache them there once, where the hub is reachable: "
            "`python -m services.clip_cider.weights fetch` with these CLIP_CIDER_* settings (compose: "
            "`docker compose run --rm clip_cider python -m services.clip_cider.weights fetch` fills "
            "the model-cache volume); (2) set HF_ENDPOINT to a hub mirror this host reaches; "
            "(3) set CLIP_CIDER_CLIP_PRETRAINED to a checkpoint file, or empty for random weights "
            "(scores then mean nothing: tests only)")


def hub_problem(timeout_s: float = 3.0) -> str | None:
    """Why no download can start (offline mode, an endpoint that refuses), or None."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    try:
        port = url.port or (80 if url.scheme == "http" else 443)
        socket.create_connection((url.hostname or "", port), timeout=timeout_s).close()
    except (OSError, ValueError) as exc:
        return f"the hub at {endpoint} cannot be reached ({getattr(exc, 'strerror', None) or exc})"
    return None


def fetch(model: str, tag: str, cache_dir: Path | None, timeout_s: float,
          stop: threading.Event | None = None) -> LocalWeights:
    """Download `tag`'s weights into the cache within `timeout_s`; give up at once when `stop` is set."""
    deadline = time.monotonic() + timeout_s
    if problem := hub_problem():
        raise WeightsUnavailable(unavailable(model, tag, cache_dir, problem))
    cmd = [sys.executable, "-m", "services.clip_cider.weights", "fetch", "--model", model,
           "--pretrained", tag, "--parent", str(os.getpid())]
    if cache_dir:
        cmd += ["--cache-dir", str(cache_dir)]
    # Files, not pipes: a child whose output filled a pipe would block until the deadline.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        late = (f"no download within CLIP_CIDER_LOAD_TIMEOUT_S={timeout_s:g} s (raise it for a slow "
                "first download)")
        try:
            _wait(child, deadline, stop, lambda: unavailable(model, tag, cache_dir, late),
                  f"stopped while downloading CLIP weights {model}/{tag}")
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        out.seek(0)
        err.seek(0)
        lines, errors = out.read().strip().splitlines(), err.read().strip().splitlines()
    if child.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        last = (errors or [f"exit code {child.returncode}"])[-1]
        raise WeightsUnavailable(unavailable(model, tag, cache_dir, f"the download failed ({last[-300:]})"))
    return _local(lines[-1], _pretrained_cfg(model, tag))


def _wait(child: subprocess.Popen, deadline: float, stop: threading.Event | None,
          late: Callable[[], str], stopped: str) -> None:
    while child.poll() is None:
        if stop is not None and stop.is_set():
            raise WeightsUnavailable(stopped)
        if time.monotonic() > deadline:
            raise WeightsUnavailable(late())
        time.sleep(0.1)


class Download:
    """`fetch` on its own thread, then `then(weights)` (building the model); its state as a reason.

    The service starts one when its weights are not on disk, so its probes answer and SIGTERM ends
    it while the download runs; `stop` kills the download at once.
    """

    def __init__(self, model: str, tag: str, cache_dir: Path | None, timeout_s: float,
                 then: Callable[[LocalWeights], None]) -> None:
        self.model, self.tag, self.cache_dir, self.timeout_s = model, tag, cache_dir, timeout_s
        self.then = then
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clip-weights-download", daemon=True)
        self._started = 0.0
        self.error: str | None = None

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        try:
            weights = fetch(self.model, self.tag, self.cache_dir, self.timeout_s, self._stop)
            if not self._stop.is_set():
                self.then(weights)
        except WeightsUnavailable as exc:
            self.error = str(exc)
        except Exception as exc:  # building the model failed: the service reports it, never hangs
            self.error = f"load failed: {type(exc).__name__}: {exc}"
        if self.error and not self._stop.is_set():
            log.error("%s", self.error)

    def reason(self) -> str | None:
        """Why the model is not there yet (downloading, or the failure); None once it is."""
        if self.error:
            return self.error
        if self._thread.is_alive():
            waited = time.monotonic() - self._started
            return (f"downloading CLIP weights {self.model}/{self.tag} into {cache_path(self.cache_dir)}: "
                    f"{waited:.0f} s of CLIP_CIDER_LOAD_TIMEOUT_S={self.timeout_s:g}")
        return None

    def stop(self, wait_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(wait_s)


def weights_problem(settings: ClipCiderSettings) -> str | None:
    """None when the weights can be loaded here (on disk, or a hub to fetch them from); else why."""
    try:
        if locate(settings.clip_model, settings.clip_pretrained, settings.clip_cache_dir) is not None:
            return None
    except ValueError as exc:  # a tag open_clip does not know
        return str(exc)
    problem = hub_problem()
    return unavailable(settings.clip_model, settings.clip_pretrained, settings.clip_cache_dir, problem) \
        if problem else None


def _in_hf_cache(hf_hub: str, cache_dir: str | None) -> str | None:
    if not hf_hub:
        return None
    from huggingface_hub import try_to_load_from_cache

    repo, filename = os.path.split(hf_hub)
    names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    if filename.endswith(".bin"):
        names.insert(0, filename.removesuffix(".bin") + ".safetensors")
    for name in names:
        found = try_to_load_from_cache(repo, name, cache_dir=cache_dir)
        if isinstance(found, str):
            return found
    return None


def _in_url_cache(url: str, cache_dir: str | None) -> str | None:
    if not url:
        return None
    path = (Path(cache_dir) if cache_dir else Path.home() / ".cache" / "clip") / os.path.basename(url)
    return str(path) if path.is_file() else None


def _die_with(parent: int) -> None:
    """In the download child: die when the service does (Linux), even killed with SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the service ended before the line above ran
        sys.exit(1)


def _fetch_main(args: argparse.Namespace) -> int:
    settings = ClipCiderSettings()
    model, tag = args.model or settings.clip_model, args.pretrained or settings.clip_pretrained
    cache_dir = Path(args.cache_dir) if args.cache_dir else settings.clip_cache_dir
    if args.parent:
        _die_with(args.parent)
    if not tag or Path(tag).is_file():
        print(f"CLIP_CIDER_CLIP_PRETRAINED is {tag!r}: nothing to download", file=sys.stderr)
        return 1
    from open_clip.pretrained import download_pretrained

    print(download_pretrained(_pretrained_cfg(model, tag), cache_dir=str(cache_dir) if cache_dir else None))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.clip_cider.weights",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    fetch_cmd = sub.add_parser("fetch", help="download the weights into the cache now")
    fetch_cmd.add_argument("--model", help="open_clip architecture (default: CLIP_CIDER_CLIP_MODEL)")
    fetch_cmd.add_argument("--pretrained", help="open_clip tag (default: CLIP_CIDER_CLIP_PRETRAINED)")
    fetch_cmd.add_argument("--cache-dir", help="download folder (default: CLIP_CIDER_CLIP_CACHE_DIR)")
    fetch_cmd.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # the service, when it asks
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            return _fetch_main(args)
        problem = weights_problem(ClipCiderSettings())
    except ValueError as exc:  # pydantic's ValidationError (a CLIP_CIDER_* variable), or an unknown tag
        problem = f"invalid CLIP_CIDER_* settings: {exc}"
    if problem:
        print(problem)
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
