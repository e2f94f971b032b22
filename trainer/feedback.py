"""Training feedback: a rate-limited Rich live panel, OUTPUT/metrics.jsonl, and reward curves at the end."""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from transformers import TrainerCallback

from trainer.plots import plot_reward_curves

logger = logging.getLogger(__name__)

_REWARD_STAT = re.compile(r"^rewards/(?P<name>[^/]+)/(?P<stat>.+)$")
_HEADLINE = ("loss", "reward", "reward_std", "learning_rate", "grad_norm", "kl")


def _finite(value: Any) -> Any:
    """JSON has no NaN: a metric TRL could not compute (every reward null) is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsWriter(TrainerCallback):
    """Appends one JSON line per log event to `path` (step, epoch, wall time, every logged value).

    A fresh run (step 0) starts the file anew; a resumed run appends to it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if state.global_step == 0:
                self.path.write_text("", encoding="utf-8")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "epoch": state.epoch, "time": time.time()}
        record.update({k: _finite(v) for k, v in logs.items()})
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")


class RewardCurves(TrainerCallback):
    """At the end of training, plots `metrics_jsonl` into `out_png` (one panel per reward)."""

    def __init__(self, metrics_jsonl: str | Path, out_png: str | Path) -> None:
        self.metrics_jsonl, self.out_png = Path(metrics_jsonl), Path(out_png)

    def on_train_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        try:
            plot_reward_curves(self.metrics_jsonl, self.out_png)
        except (OSError, ValueError) as exc:
            # The run itself succeeded; a missing plot is reported, not raised over the result.
            logger.warning("reward curves not written to %s: %s", self.out_png, exc)


def _flatten(completion: Any) -> str:
    """A completion as text: TRL passes conversational completions as lists of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(_flatten(m.get("content", "")) if isinstance(m, dict) else str(m)
                       for m in completion)
    if isinstance(completion, dict):
        return str(completion.get("text", ""))
    return str(completion)


def trl_samples(trainer: Any) -> Callable[[int], list[tuple[str, dict[str, float]]]]:
    """Reads the latest completions and their per-reward scores from a TRL GRPOTrainer.

    TRL 1.16 keeps them in `trainer._logs` (private, hence read defensively: if the layout
    changes, the panel shows no completions rather than failing the run).
    """

    def latest(count: int) -> list[tuple[str, dict[str, float]]]:
        logs = getattr(trainer, "_logs", None)
        if not isinstance(logs, Mapping) or "completion" not in logs:
            return []
        completions = list(logs["completion"])[-count:]
        start = len(logs["completion"]) - len(completions)
        rewards = {name: list(values) for name, values in logs.get("rewards", {}).items()}
        return [
            (_flatten(c), {n: v[start + i] for n, v in rewards.items() if start + i < len(v)})
            for i, c in enumerate(completions)
        ]

    return latest


class LivePanel(TrainerCallback):
    """A Rich live panel: progress, loss, reward mean, per-reward stats and latest completions.

    Redraws at most `max_refresh_per_s` times a second, however often TRL logs. Disabled (a
    no-op) when the console is not a terminal, so logs and CI output stay clean.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        max_refresh_per_s: float = 2.0,
        num_completions: int = 3,
        max_chars: int = 160,
        samples: Callable[[int], list[tuple[str, dict[str, float]]]] | None = None,
    ) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal
        self.min_interval_s = 1.0 / max_refresh_per_s
        self.num_completions, self.max_chars = num_completions, max_chars
        self.samples = samples
        self.refreshes = 0
        self._live: Live | None = None
        self._last_refresh = -math.inf
        self._latest: dict[str, Any] = {}
        self._progress = (0, 0, None)
        self._started = time.monotonic()

    def attach(self, trainer: Any) -> LivePanel:
        """Show the latest completions of this TRL trainer."""
        self.samples = trl_samples(trainer)
        return self

    def on_train_begin(self, args, state, control, **kwargs):
        if not self.enabled or not state.is_world_process_zero:
            return
        self._started = time.monotonic()
        self._live = Live(console=self.console, auto_refresh=False, transient=False)
        self._live.start()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._live is None or not logs:
            return
        self._latest.update(logs)
        self._progress = (state.global_step, state.max_steps, state.epoch)
        now = time.monotonic()
        if now - self._last_refresh >= self.min_interval_s:
            self._refresh(now)

    def on_train_end(self, args, state, control, **kwargs):
        if self._live is None:
            return
        self._refresh(time.monotonic())  # the last state is always shown, rate limit or not
        self._live.stop()
        self._live = None

    def _refresh(self, now: float) -> None:
        assert self._live is not None
        self._live.update(self.render(), refresh=True)
        self._last_refresh = now
        self.refreshes += 1

    def render(self) -> Panel:
        step, max_steps, epoch = self._progress
        elapsed = time.monotonic() - self._started
        title = f"GRPO  step {step}/{max_steps or '?'}"
        if epoch is not None:
            title += f"  epoch {epoch:.2f}"
        title += f"  {elapsed:.0f}s"
        return Panel(Group(self._headline(), self._reward_table(), self._completions()),
                     title=title, border_style="cyan")

    def _headline(self) -> Table:
        table = Table.grid(padding=(0, 2))
        shown = [(k, self._latest[k]) for k in _HEADLINE if k in self._latest]
        for _ in shown:
            table.add_column(justify="right")
        table.add_row(*(f"[bold]{k}[/] {_fmt(v)}" for k, v in shown))
        return table

    def _reward_table(self) -> Table:
        stats: dict[str, dict[str, Any]] = {}
        for key, value in self._latest.items():
            if match := _REWARD_STAT.match(key):
                stats.setdefault(match["name"], {})[match["stat"]] = value
        columns = sorted({stat for s in stats.values() for stat in s},
                         key=lambda c: (c not in ("mean", "std"), c))
        table = Table(title="rewards", title_justify="left", expand=False)
        table.add_column("reward")
        for column in columns:
            table.add_column(column, justify="right")
        for name in sorted(stats):
            table.add_row(name, *(_fmt(stats[name].get(c)) for c in columns))
        return table

    def _completions(self) -> Table:
        table = Table(title="latest completions", title_justify="left", show_lines=False)
        table.add_column("completion", overflow="fold")
        table.add_column("scores", justify="right")
        for text, scores in (self.samples(self.num_completions) if self.samples else []):
            table.add_row(_truncate(text, self.max_chars),
                          " ".join(f"{n}={_fmt(v)}" for n, v in scores.items()))
        return table


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    return str(value)


def _truncate(text: str, limit: int) -> str:
    flat = text.replace("\n", " ⏎ ")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def feedback_callbacks(
    output_dir: str | Path, *, console: Console | None = None
) -> tuple[MetricsWriter, LivePanel, RewardCurves]:
    """The run's callbacks: OUTPUT/metrics.jsonl, the live panel, OUTPUT/rewards.png at the end.

    Call `panel.attach(trainer)` once the GRPOTrainer exists to show its latest completions.
    """
    out = Path(output_dir)
    return (
        MetricsWriter(out / "metrics.jsonl"),
        LivePanel(console),
        RewardCurves(out / "metrics.jsonl", out / "rewards.png"),
    )
