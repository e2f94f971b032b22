"""The math inside a worker process: parse with math-verify, verify, read numbers; and the serve loop.

This module is imported by the service process only to name `serve` as a process target;
math-verify and sympy are imported inside the worker, so that nothing in the service process
can hang on model output. Tasks and replies are plain tuples:

    ("equiv", golds: tuple[str, ...], answer: str | None) -> ("ok", reward, reason | None)
                                                          | ("unscorable", reason)
    ("number", answer: str)                                -> ("ok", decimal string | None)
    any task that raises                                   -> ("error", exception type name)
"""

from __future__ import annotations

import logging
import os
import resource
import signal
from decimal import Decimal, localcontext
from multiprocessing.connection import Connection
from typing import Any

from services.math_equiv.extract import is_delimited, is_plain_number
from services.math_equiv.words import with_decimal_point

log = logging.getLogger(__name__)

Task = tuple[Any, ...]
Reply = tuple[Any, ...]


def parse_answer(text: str) -> list:
    """Parse a final answer (or a reference) with math-verify, reading it whole.

    A plain number ("1,234", "45°", "5 cm", "50%", "1,000.99$") is read as written, where
    math-verify's number patterns apply, with a decimal comma as a point ("1,22" is 1.22).
    Text with its own delimiters ($…$, \\(…\\), \\boxed) is read as written, as LaTeX.
    Anything else is read as LaTeX inside $…$: as written, math-verify's
    plain-text patterns would take a fragment as the answer ("x^2+1" -> 1, "3 or 4" -> 4,
    "2^{10}" -> 2), which turns hedged or wrong answers into right ones.

    Model output reaches sympy only through latex2sympy's grammar or as a numeral matched by
    math-verify's number pattern; never through `sympify`/`parse_expr`.
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    text = text.strip()
    if is_plain_number(text):
        candidate, config = with_decimal_point(text), [ExprExtractionConfig()]
    elif is_delimited(text):
        candidate, config = text, [LatexExtractionConfig()]
    else:
        # Inline $…$ stops at a newline; LaTeX reads any run of whitespace as one space.
        candidate, config = "$" + " ".join(text.split()) + "$", [LatexExtractionConfig()]
    return parse(candidate, extraction_config=config, parsing_timeout=None)


def _has_math(parsed: list) -> bool:
    from sympy import Basic, MatrixBase

    return any(isinstance(x, Basic | MatrixBase) for x in parsed)


def equivalence(golds: tuple[str, ...], answer: str | None) -> Reply:
    """Whether `answer` is mathematically one of `golds`, via math_verify.verify(gold, answer)."""
    from math_verify import verify

    gold = [x for g in golds for x in parse_answer(g)]
    if not _has_math(gold):
        return ("unscorable", "reference could not be parsed as math")
    if answer is None:
        return ("ok", 0.0, "no_answer")
    pred = parse_answer(answer)
    if not pred:
        return ("ok", 0.0, "answer_not_parsed")
    # Gold first: verify is asymmetric on purpose (`x = 5` answers a gold 5, not the reverse).
    if verify(gold, pred, timeout_seconds=None):
        return ("ok", 1.0, None)
    return ("ok", 0.0, "not_equivalent")


def numeric_value(answer: str) -> Reply:
    """The answer's real value as a decimal string, or None when it has none."""
    from sympy import Basic

    for x in parse_answer(answer):
        if isinstance(x, Basic) and getattr(x, "is_number", False):
            text = _decimal_text(x)
            if text is not None:
                return ("ok", text)
    return ("ok", None)


def _decimal_text(x) -> str | None:
    # Exact where the value is exact: 1.45 parses to a 15-digit Float whose binary value is
    # 1.4499999…, which 30-digit evaluation would expose and round down.
    if x.is_Rational:
        with localcontext() as ctx:
            ctx.prec = 50
            return str(Decimal(int(x.p)) / Decimal(int(x.q)))
    if x.is_Float:
        return str(x) if x.is_finite else None
    value = x.evalf(30)
    if value.is_extended_real and value.is_finite:
        return str(value)
    return None


def handle(task: Task) -> Reply:
    try:
        kind, *args = task
        if kind == "equiv":
            return equivalence(*args)
        if kind == "number":
            return numeric_value(*args)
        return ("error", f"unknown task {kind!r}")
    except Exception as exc:
        return ("error", type(exc).__name__)


def serve(conn: Connection, memory_mb: int | None) -> None:
    """Worker main loop: warm up, say ready, answer tasks until EOF or None."""
    # Ctrl-C reaches the whole process group; the service decides when its workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # math-verify warns that its own timeouts are off; the pool enforces the limit instead.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    handle(("equiv", ("\\frac{1}{2}",), "0.5"))
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(handle(task))
