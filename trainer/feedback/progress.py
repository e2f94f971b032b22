"""Progress off a terminal: one plain line every tenth of the run, instead of TRL's per-step dicts."""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Console
from transformers import TrainerCallback

from trainer.feedback.panel import format_value

LINES_PER_RUN = 10  # a 100-step run prints a line every 10 steps
_SHOWN = ("loss", "reward")


def every_n_steps(max_steps: int, lines: int = LINES_PER_RUN) -> int:
    """Steps between two progress lines, so that a run of `max_steps` prints about `lines`."""
    return max(1, math.ceil(max_steps / lines)) if max_steps > 0 else 1


class PlainProgress(TrainerCallback):
    """Off a terminal (a log file, CI, a pipe), one line per `every_n_steps(max_steps)` steps.

    `step 30/100 (30%), 41 s elapsed, ~96 s left: loss 0.0123, reward 0.412, format 0.300, ...`,
    from the latest logged values; nothing else is printed per step (TRL's own printers are taken
    off the trainer, and each logged dict goes to trainer_log.txt and metrics.jsonl). A no-op on a
    terminal, where the live panel shows progress.
    """

    def __init__(self, console: Console | None = None, *, lines: int = LINES_PER_RUN) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = not self.console.is_terminal
        self.lines = lines
        self.printed = 0
        self._last_step = -1
        self._every = 1
        self._next_due = 1
        self._started = time.monotonic()
        self._latest: dict[str, Any] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        self._started = time.monotonic()
        self._every = every_n_steps(state.max_steps, self.lines)
        self._next_due = (state.global_step // self._every + 1) * self._every

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not self.enabled or not state.is_world_process_zero or not logs:
            return
        self._latest.update(logs)
        step = state.global_step
        # The last step always gets its line; the end-of-run summary dict shares its step.
        if step >= self._next_due or (step == state.max_steps and step > self._last_step):
            self._print(step, state.max_steps)
            self._last_step = step
            self._next_due = (step // self._every + 1) * self._every

    def _print(self, step: int, max_steps: int) -> None:
        elapsed = time.monotonic() - self._started
        line = f"step {step}/{max_steps}"
        if max_steps:
            line += f" ({100 * step // max_steps}%)"
        line += f", {elapsed:.0f} s elapsed"
        if 0 < step < max_steps:
            line += f", ~{elapsed / step * (max_steps - step):.0f} s left"
        shown = [(k, self._latest[k]) for k in _SHOWN if k in self._latest]
        shown += [(k.split("/")[1], v) for k, v in self._latest.items()
                  if k.startswith("rewards/") and k.endswith("/mean")]
        if shown:
            line += ": " + ", ".join(f"{k} {format_value(v)}" for k, v in shown)
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        self.printed += 1

