"""Reading recipe YAML: YAML 1.2 scalars, and `--set a.b=value` overrides applied to the raw mapping."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and the key to fix."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars. PyYAML follows YAML 1.1, where `1e-5` is a string (a
    learning rate would reach TRL as text) and `no`/`off`/`yes`/`on` are booleans (TRL's
    `save_strategy: no` would arrive as False)."""


_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def apply_override(raw: dict[str, Any], item: str, path: Path) -> None:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"override {item!r} must look like section.key=value")
    parts = key.strip().split(".")
    try:
        value = yaml_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"override {key}: value {text!r} is not valid YAML: {exc}") from exc
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            node = node[_index(part, node, where, path)]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise RecipeError(f"override {key}: {where} in {path} is a value, not a section")
    last = parts[-1]
    if isinstance(node, list):
        node[_index(last, node, key, path)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise RecipeError(f"override {key}: {'.'.join(parts[:-1])} in {path} is a value, not a section")


def _index(part: str, node: list[Any], where: str, path: Path) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise RecipeError(
            f"override {where}: {path} has a list of {len(node)} here; use an index 0..{len(node) - 1}"
        )
    return int(part)
