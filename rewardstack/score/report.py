"""What `rewardstack score` prints: a summary per service (with why items were null), items, verdict."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from rich.table import Table

from rewardstack.score.run import ServiceTally

FAILED_STATUSES = frozenset({"error", "timeout"})


def null_reasons(tally: ServiceTally, top: int = 3) -> str:
    """The most common `status: reason` of the null rewards, with counts."""
    counts = Counter(
        f"{status}: {reason or 'no reason given'}"
        for reward, status, reason in zip(tally.rewards, tally.statuses, tally.reasons, strict=True)
        if reward is None
    )
    shown = [f"{n}× {why}" for why, n in counts.most_common(top)]
    if len(counts) > top:
        shown.append(f"+{len(counts) - top} other reasons")
    return "; ".join(shown) or "-"


def summary_table(tallies: dict[str, ServiceTally]) -> Table:
    table = Table(title="rewards")
    for col in ("service", "items", "mean", "nulls", "errors", "latency p50 (ms)"):
        table.add_column(col, justify="left" if col == "service" else "right")
    for name, t in tallies.items():
        scored = [r for r in t.rewards if r is not None]
        mean = f"{statistics.fmean(scored):.3f}" if scored else "-"
        latency = f"{statistics.median(t.seconds) * 1000:.1f}" if t.seconds else "-"
        failed = sum(s in FAILED_STATUSES for s in t.statuses)
        nulls = len(t.rewards) - len(scored)
        table.add_row(name, str(len(t.rewards)), mean, str(nulls), str(failed), latency)
    return table


def null_lines(tallies: dict[str, ServiceTally]) -> list[str]:
    """One line per service with nulls: why its items were null (too long for a table cell)."""
    return [f"{name} null: {null_reasons(t)}" for name, t in tallies.items() if None in t.rewards]


def verdict(tallies: dict[str, ServiceTally], max_null_fraction: float) -> list[str]:
    """Why the run should exit non-zero: services that returned errors or too many nulls; [] if none."""
    problems = []
    for name, t in tallies.items():
        failed = sum(s in FAILED_STATUSES for s in t.statuses)
        nulls = sum(r is None for r in t.rewards)
        if failed:
            problems.append(f"{name}: {failed} of {len(t.rewards)} items failed ({null_reasons(t, 1)})")
        elif t.rewards and nulls / len(t.rewards) > max_null_fraction:
            problems.append(
                f"{name}: {nulls} of {len(t.rewards)} rewards are null, more than --max-null-fraction "
                f"{max_null_fraction:g} ({null_reasons(t, 1)})"
            )
    return problems


def item_table(rows: list[dict], path: Path, names: list[str], width: int = 60) -> Table:
    """Per-item view of a scored file: the completion (cut) and each service's reward or status."""
    table = Table(title=str(path), show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("completion", overflow="ellipsis", max_width=width, no_wrap=True)
    for name in names:
        table.add_column(name, justify="right")
    for i, row in enumerate(rows, 1):
        text = " ".join(str(row.get("completion", "")).split())
        cells = [_fmt(row["rewards"].get(n), row.get("status", {}).get(n)) for n in names]
        table.add_row(str(i), text, *cells)
    return table


def _fmt(value, status: str | None) -> str:
    if value is None:
        return f"null ({status})" if status and status != "ok" else "null"
    return f"{value:.3f}"
