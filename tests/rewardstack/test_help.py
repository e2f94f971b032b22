"""Every option of every verb says what it does and, when it has one, its default."""

from __future__ import annotations

import argparse

from rewardstack.cli import build_parser


def _verbs() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _documented(action: argparse.Action) -> str | None:
    """Why `action`'s help falls short, or None."""
    if isinstance(action, argparse._HelpAction | argparse._VersionAction):
        return None
    text = action.help or ""
    if not text.strip() or text == argparse.SUPPRESS:
        return "no help text"
    default = action.default
    flag = isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction)
    if default in (None, [], argparse.SUPPRESS) or flag or action.required:
        return None
    shown = text % {"default": default} if "%(default)" in text else text
    return None if "default" in shown and str(default) in shown else f"default {default!r} not in its help"


def test_every_option_has_help_with_its_default():
    problems = [f"rewardstack {verb} {'/'.join(action.option_strings) or action.dest}: {why}"
                for verb, parser in _verbs().items() for action in parser._actions
                if (why := _documented(action))]
    assert not problems, "\n".join(problems)


def test_the_walk_sees_every_verb_and_catches_an_option_without_help():
    assert set(_verbs()) >= {"serve", "score", "demo", "example", "train", "eval", "merge", "gateway"}
    probe = argparse.ArgumentParser()
    bare = probe.add_argument("--out", default="x")
    told = probe.add_argument("--n", default=3, help="how many (default %(default)s)")
    assert _documented(bare) == "no help text" and _documented(told) is None


def test_the_readme_lists_every_exit_status():
    from tests.helpers import ROOT

    paragraphs = (ROOT / "README.md").read_text().split("\n\n")
    told = [p for p in paragraphs if "exits with" in p and "statuses" in p]
    assert told, "the README has no paragraph on exit statuses"
    for status, meaning in (("0", "did what was asked"), ("1", "failure"), ("2", "user mistake"),
                            ("130", "Ctrl-C")):
        assert f"**{status}**" in told[0] and meaning in told[0], status
