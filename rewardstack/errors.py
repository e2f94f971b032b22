"""How a verb's failure ends the command: the one error convention of `rewardstack`.

A user mistake, or a failure the user can fix, is one line (no traceback) and exit 2; Ctrl-C
(SIGINT) and SIGTERM are exit 130, after every `finally` has run (so the services a verb started
are stopped); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable

from rich.markup import escape

from rewardstack.console import console

# Typed errors raised by these packages carry messages written for users.
_USER_FACING = {"proto", "trainer", "services", "rewardstack"}


class CliError(Exception):
    """A user-facing failure: printed as one message, exit code 2."""


def run_verb(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    # SIGTERM's default action ends the process at once, skipping the cleanup that stops children.
    main = threading.current_thread() is threading.main_thread()  # only it may set handlers
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
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
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def user_error(exc: BaseException) -> int:
    """Print a failure meant for the user as is (no markup, no wrapping, no traceback): exit 2."""
    console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
    return 2
