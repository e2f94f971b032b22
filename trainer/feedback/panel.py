"""The live panel: a rate-limited Rich view of progress, rewards and the latest samples (terminal only)."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from trainer.feedback.timing import METRIC as REWARD_PHASE

_REWARD_STAT = re.compile(r"^rewards/(?P<name>[^/]+)/(?P<stat>.+)$")
REPLACEMENT = "\ufffd"
_HEADLINE = ("loss", "reward", "reward_std", "learning_rate", "grad_norm", "kl")


def _flatten(completion: Any) -> str:
    """A prompt or completion as text: TRL passes conversational ones as lists of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):  # messages, or a message's typed content blocks
        return "".join(_flatten(m) for m in completion)
    if isinstance(completion, dict):
        if "content" in completion:
            return _flatten(completion["content"])
        return str(completion.get("text") or "")  # an image block carries text None
    return str(completion)


@dataclass(frozen=True)
class Sample:
    """One completion of the latest step, with what it answered and what it was scored against."""

    prompt: str
    completion: str
    reference: str
    scores: dict[str, float]


def trl_samples(trainer: Any) -> Callable[[int], list[Sample]]:
    """Reads the latest prompts, completions, references and per-reward scores from a GRPOTrainer.

    TRL 1.16 keeps them in `trainer._logs` (private, hence read defensively: if the layout
    changes, the panel shows no completions rather than failing the run). The references are
    the `reference/<reward>` columns our reward functions log through TRL's `log_extra`.
    """

    def latest(count: int) -> list[Sample]:
        logs = getattr(trainer, "_logs", None)
        if not isinstance(logs, Mapping) or "completion" not in logs:
            return []
        completions = list(logs["completion"])[-count:]
        start = len(logs["completion"]) - len(completions)
        prompts = list(logs.get("prompt", []))
        rewards = {name: list(values) for name, values in logs.get("rewards", {}).items()}
        references = [list(v) for k, v in logs.get("extra", {}).items() if k.startswith("reference/")]

        def at(values: list, i: int, default: Any = "") -> Any:
            return values[i] if i < len(values) else default

        return [
            Sample(
                prompt=_flatten(at(prompts, start + i)),
                # TRL decodes each completion whole, and shows as U+FFFD the bytes that form no
                # character (one cut off by max_completion_length, or lone bytes a young policy
                # writes); they are left out here, as trainer.generation.decode_completions does.
                completion=_flatten(c).replace(REPLACEMENT, ""),
                reference=_reference_text(at(references[0], start + i, None) if references else None),
                scores={n: v[start + i] for n, v in rewards.items() if start + i < len(v)},
            )
            for i, c in enumerate(completions)
        ]

    return latest


def _reference_text(reference: Any) -> str:
    if reference is None:
        return "—"
    return " | ".join(map(str, reference)) if isinstance(reference, list | tuple) else str(reference)


# TRL's own printers of the per-step dict: a tqdm bar that writes the dict under it, or print().
_TRL_PRINTERS = (ProgressCallback, PrinterCallback)


def take_over_printing(trainer: Any) -> None:
    """Take TRL's printers off `trainer`: the live panel (on a terminal) or one plain line every
    tenth of the run (off one) report progress, and every dict they printed is kept in
    trainer_log.txt and metrics.jsonl instead."""
    for printer in _TRL_PRINTERS:
        trainer.remove_callback(printer)


class LivePanel(TrainerCallback):
    """A Rich live panel: one progress bar, loss, reward mean, per-reward stats, latest samples.

    Redraws at most `max_refresh_per_s` times a second, however often TRL logs. Disabled (a
    no-op) when the console is not a terminal, so logs and CI output stay clean (PlainProgress
    prints there instead).
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        max_refresh_per_s: float = 2.0,
        num_completions: int = 3,
        max_chars: int = 160,
        samples: Callable[[int], list[Sample]] | None = None,
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
        """Show this TRL trainer's latest samples."""
        self.samples = trl_samples(trainer)
        return self

    def on_train_begin(self, args, state, control, **kwargs):
        if not self.enabled or not state.is_world_process_zero:
            return
        self._started = time.monotonic()
        self._progress = (state.global_step, state.max_steps, state.epoch)
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
        title = f"GRPO  step {step}/{max_steps or '?'}"
        if epoch is not None:
            title += f"  epoch {epoch:.2f}"
        return Panel(Group(self._bar(), self._headline(), self._step_time(), self._reward_table(),
                           self._completions()),
                     title=title, border_style="cyan")

    def _bar(self) -> Table:
        step, max_steps, _ = self._progress
        elapsed = time.monotonic() - self._started
        eta = elapsed / step * (max_steps - step) if step and max_steps else None
        row = Table.grid(padding=(0, 1))
        row.add_column(width=40)
        row.add_column()
        row.add_row(ProgressBar(total=max_steps or None, completed=step, width=40),
                    f"{step}/{max_steps or '?'}  {elapsed:.0f}s elapsed"
                    + (f", ~{eta:.0f}s left" if eta is not None else ""))
        return row

    def _headline(self) -> Table:
        table = Table.grid(padding=(0, 2))
        shown = [(k, self._latest[k]) for k in _HEADLINE if k in self._latest]
        for _ in shown:
            table.add_column(justify="right")
        table.add_row(*(f"[bold]{k}[/] {format_value(v)}" for k, v in shown))
        return table

    def _step_time(self) -> str:
        """Whether the rewards or the rest (generation, update) hold the step, at a glance."""
        step_s, rewards_ms = self._latest.get("step_time"), self._latest.get(REWARD_PHASE)
        if not isinstance(step_s, int | float) or not isinstance(rewards_ms, int | float) or step_s <= 0:
            return ""
        return (f"[bold]step[/] {step_s:.3g} s   [bold]reward phase[/] {rewards_ms:.3g} ms "
                f"({100 * rewards_ms / (step_s * 1000):.3g} % of the step)")

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
            table.add_row(name, *(format_value(stats[name].get(c)) for c in columns))
        return table

    def _completions(self) -> Table:
        table = Table(title="latest completions", title_justify="left", show_lines=False)
        table.add_column("prompt", overflow="fold", ratio=3)
        table.add_column("completion", overflow="fold", ratio=3)
        table.add_column("reference", overflow="fold", ratio=1)
        table.add_column("scores", justify="right", ratio=2)
        for sample in (self.samples(self.num_completions) if self.samples else []):
            table.add_row(_truncate(sample.prompt, self.max_chars // 2),
                          _truncate(sample.completion, self.max_chars),
                          _truncate(sample.reference, 40),
                          " ".join(f"{n}={format_value(v)}" for n, v in sample.scores.items()))
        return table


def format_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    return str(value)


def _truncate(text: str, limit: int) -> str:
    flat = text.replace("\n", " ⏎ ")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
