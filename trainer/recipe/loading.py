"""Reading recipe YAML: YAML 1.2 scalars, `--set a.b=value` overrides, and did-you-mean for unknown keys."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel


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


def error_message(error: dict[str, Any], root: type[BaseModel]) -> str:
    """pydantic's message; for a key no section has, the closest valid keys of that section too."""
    if error["type"] != "extra_forbidden":
        return error["msg"]
    import difflib

    try:
        fields = _section_fields(root, error["loc"][:-1])
    except (KeyError, AttributeError):  # a loc through a union tag: pydantic's words will do
        return error["msg"]
    key = str(error["loc"][-1])
    near = difflib.get_close_matches(key, fields, n=3, cutoff=0.6)
    if near:
        return f"unknown key (did you mean {' or '.join(near)}?)"
    return f"unknown key; this section takes {', '.join(fields)}"


def _section_fields(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys of the section at `loc` (e.g. ('rewards', 0) -> RewardEntry's fields)."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue  # an index into a list section: the entries share one model
        model = _model_of(model.model_fields[part].annotation)
    return list(model.model_fields)


def _model_of(annotation: Any) -> Any:
    """The BaseModel inside `X`, `X | None` or `list[X]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
