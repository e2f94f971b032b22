"""The run's callbacks: OUTPUT/metrics.jsonl and trainer_log.txt per log event, the live panel or plain
progress lines, OUTPUT/rewards.png at the end."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from transformers import TrainerCallback

from trainer.feedback.panel import LivePanel, take_over_printing
from trainer.feedback.plots import plot_reward_curves
from trainer.feedback.progress import PlainProgress

logger = logging.getLogger(__name__)

TRAINER_LOG = "trainer_log.txt"  # the per-step dicts TRL would have printed


def _finite(value: Any) -> Any:
    """JSON has no NaN: a metric TRL could not compute (every reward null) is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _LogFile(TrainerCallback):
    """One line per log event in `path`; a fresh run (step 0) starts the file anew, a resumed one appends."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if state.global_step == 0:
                self.path.write_text("", encoding="utf-8")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(self.line(state, logs) + "\n")

    def line(self, state, logs: dict[str, Any]) -> str:
        raise NotImplementedError


class MetricsWriter(_LogFile):
    """OUTPUT/metrics.jsonl: one JSON line per log event (step, epoch, wall time, every logged value)."""

    def line(self, state, logs: dict[str, Any]) -> str:
        record = {"step": state.global_step, "epoch": state.epoch, "time": time.time()}
        record.update({k: _finite(v) for k, v in logs.items()})
        return json.dumps(record, default=str)


class TrainerLog(_LogFile):
    """OUTPUT/trainer_log.txt: the dict TRL would have printed at each log event, on a terminal or not."""

    def line(self, state, logs: dict[str, Any]) -> str:
        return f"step {state.global_step}: {logs}"


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


class Feedback:
    """What the run shows and keeps: its callbacks, and `attach(trainer)` once the trainer exists."""

    def __init__(self, output_dir: str | Path, console: Console | None = None) -> None:
        out = Path(output_dir)
        console = console or Console(stderr=True)
        self.panel = LivePanel(console)
        self.progress = PlainProgress(console)
        self.callbacks = [MetricsWriter(out / "metrics.jsonl"), TrainerLog(out / TRAINER_LOG), self.panel,
                          self.progress, RewardCurves(out / "metrics.jsonl", out / "rewards.png")]

    def attach(self, trainer: Any) -> None:
        """Replace TRL's printers (panel on a terminal, plain lines off one); show its latest samples."""
        take_over_printing(trainer)
        self.panel.attach(trainer)


def feedback_callbacks(output_dir: str | Path, *, console: Console | None = None) -> Feedback:
    """The run's feedback: OUTPUT/metrics.jsonl and trainer_log.txt per log event (on a terminal or
    not), the live panel on a terminal or one plain progress line every tenth of the run off one,
    and OUTPUT/rewards.png at the end. Call `attach(trainer)` once the GRPOTrainer exists.
    """
    return Feedback(output_dir, console)
