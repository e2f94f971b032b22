"""Argument types shared by the verbs: refused in argparse's own one-line usage error (exit 2)."""

from __future__ import annotations

import argparse
import json

from rewardstack.errors import CliError


def positive(kind):
    """An argparse type: a number above 0."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be above 0")
        return value
    return parse


def base_port(text: str) -> int:
    value = positive(int)(text)
    if value > 65535 - 4:  # the last service listens on base + 4
        raise argparse.ArgumentTypeError(f"{text}: ports end at 65535, and five services need base..base+4")
    return value


def pairs(values: list[str], what: str) -> dict[str, str]:
    """`NAME=VALUE` options as a dict, refusing any that is not."""
    out = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise CliError(f"{what} {value!r} must look like NAME=VALUE")
        out[name] = rest
    return out


def json_object(name: str, text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--params {name}=... is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CliError(f"--params {name}=... must be a JSON object")
    return value
