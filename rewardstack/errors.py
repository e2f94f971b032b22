"""How a verb's failure ends the command: the one error convention of `rewardstack`.

A user mistake, or a failure the user can fix, is one line (no traceback) and exit 2; Ctrl-C is
exit 130; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.markup import escape

from rewardstack.console import console

# Typed errors raised by these packages carry messages written for users.
_USER_FACING = {"proto", "trainer", "services", "rewardstack"}


class CliError(Exception):
    """A user-facing failure: printed as one message, exit code 2."""


def run_verb(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return func(args)
    except CliError as exc:
        return user_error(exc)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in _USER_FACING:
            return user_error(exc)
        raise


def user_error(exc: BaseException) -> int:
    """Print a failure meant for the user as is (no markup, no wrapping, no traceback): exit 2."""
    console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
    return 2
