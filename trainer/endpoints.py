"""The reward services a URL can name, what each needs installed, and whether a reward URL can work.

Knowledge about services by name only: nothing here imports a service (the trainer reaches them by
URL; `inproc://<service>` is resolved by proto's client from the module path at run time).
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Iterable

# The order is the port order of `rewardstack serve` (base port +0, +1, ...).
SERVICE_NAMES = ("regex_format", "math_equiv", "vqa_accuracy", "clip_cider", "llm_judge")
_EXTRAS = {"math_equiv": "math", "clip_cider": "clip", "llm_judge": "judge"}
_NEEDS = {"regex_format": "re2", "math_equiv": "math_verify", "vqa_accuracy": "rapidfuzz",
          "clip_cider": "open_clip", "llm_judge": "httpx"}


def install_hint(name: str) -> str:
    return f"pip install 'rewardstack[{_EXTRAS.get(name, 'services')}]'"


def installed(name: str) -> bool:
    needs = _NEEDS.get(name)  # a service with no extra of its own needs only its package
    return (importlib.util.find_spec(f"services.{name}") is not None
            and (needs is None or importlib.util.find_spec(needs) is not None))


def unknown_service(name: str, services: Iterable[str] = SERVICE_NAMES, prefix: str = "") -> str | None:
    """None for a known service; else the closest name and the list (never `pip install`)."""
    services = list(services)
    if name in services:
        return None
    near = difflib.get_close_matches(name, services, n=1, cutoff=0.5)
    hint = f"did you mean {prefix}{near[0]}? " if near else ""
    return f"no service {name!r}; {hint}services: {', '.join(services)}"


def url_problem(url: str, services: Iterable[str] = SERVICE_NAMES) -> str | None:
    """Why a reward URL cannot work before anything is sent (scheme, in-process service); None if it can."""
    if not url.startswith(("http://", "https://", "inproc://")):
        return f"{url!r} must start with http://, https:// or inproc://"
    if not url.startswith("inproc://"):
        return None
    name = url.removeprefix("inproc://").strip("/")
    why = unknown_service(name, services, prefix="inproc://")
    if why is None and not installed(name):
        why = f"{name} is not installed here; {install_hint(name)}"
    return why
