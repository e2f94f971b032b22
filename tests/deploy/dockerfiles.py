"""Readers for the Dockerfiles, shared by the tests in tests/deploy: instructions, stages, what
pip installs, and which stages each builder runs. Parsed only; no Docker engine is needed."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Dockerfile:
    path: Path
    text: str

    @property
    def instructions(self) -> list[tuple[str, str]]:
        joined = re.sub(r"\\\n", " ", self.text)
        out = []
        for line in joined.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                word, _, rest = line.partition(" ")
                out.append((word.upper(), rest.strip()))
        return out

    def pip_installs(self) -> tuple[set[str], list[Requirement]]:
        """Extras of the project and named requirements installed by pip or uv pip."""
        extras: set[str] = set()
        named: list[Requirement] = []
        for word, rest in self.instructions:
            if word != "RUN":
                continue
            for args in shell_commands(rest):
                if "install" not in args or not ({"pip", "uv"} & {Path(a).name for a in args}):
                    continue
                skip_next = False
                for a in args[args.index("install") + 1:]:
                    if skip_next:
                        skip_next = False
                    elif a in {"--index-url", "--extra-index-url", "--override", "-r", "-c", "--python"}:
                        skip_next = True
                    elif a.startswith("-"):
                        continue
                    elif a.startswith("."):
                        m = re.fullmatch(r"\.\[([^\]]*)\]", a)
                        extras.update(m.group(1).split(",") if m else ())
                    else:
                        named.append(Requirement(a))
        return extras, named

    def arg_defaults(self) -> dict[str, str]:
        """Every `ARG NAME=default` of the file, global or inside a stage (later ones win)."""
        return dict(re.findall(r"^ARG (\w+)=(\S*)", self.text, re.M))

    def stage_bodies(self) -> list[tuple[str, str, list[tuple[str, str]]]]:
        """(FROM argument, stage name, the stage's instructions) in file order."""
        out: list[tuple[str, str, list[tuple[str, str]]]] = []
        for word, rest in self.instructions:
            if word == "FROM":
                parts = rest.split()
                out.append((parts[0], parts[2] if len(parts) > 2 else "", []))
            elif out:
                out[-1][2].append((word, rest))
        return out

    def legacy_build(self, target: str | None) -> list[str]:
        """The stages the legacy builder (DOCKER_BUILDKIT=0) runs for `--target`: every stage up to
        and including the target, in file order, whether the target needs it or not."""
        names = [name for _, name, _ in self.stage_bodies()]
        return names[: names.index(target) + 1] if target else names

    def stages(self) -> list[tuple[str, str]]:
        """(base image, stage name) of every FROM, with ARG defaults substituted."""
        args = self.arg_defaults()
        out = []
        for word, rest in self.instructions:
            if word == "FROM":
                parts = rest.split()
                image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[0])
                out.append((image, parts[2] if len(parts) > 2 else ""))
        return out


_SEPARATORS = {"&&", "||", ";", ";;", "|", "(", ")", "{", "}", "&", ">&", ">", "<"}


def shell_commands(script: str) -> list[list[str]]:
    """A shell line split into its simple commands' words: on `&&`, `||`, `;`, pipes, braces and
    parentheses, quotes removed. Enough for the RUN lines of our Dockerfiles, not a shell."""
    lex = shlex.shlex(script, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lex:
        if token in _SEPARATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def dockerfile(path: str) -> Dockerfile:
    p = ROOT / path
    return Dockerfile(p, p.read_text())
