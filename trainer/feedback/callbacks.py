"""The run's callbacks: OUTPUT/metrics.jsonl per log event, the live panel, OUTPUT/rewards.png at the end."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from transformers import TrainerCallback

from trainer.feedback.panel import TRAINER_LOG, LivePanel
from trainer.feedback.plots import plot_reward_curves

logger = logging.getLogger(__name__)


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


def feedback_callbacks(
    output_dir: str | Path, *, console: Console | None = None
) -> tuple[MetricsWriter, LivePanel, RewardCurves]:
    """The run's callbacks: OUTPUT/metrics.jsonl, the live panel, OUTPUT/rewards.png at the end.

    On a terminal the panel replaces TRL's printed dict, which then goes to OUTPUT/trainer_log.txt.

    Call `panel.attach(trainer)` once the GRPOTrainer exists to show its latest completions.
    """
    out = Path(output_dir)
    return (
        MetricsWriter(out / "metrics.jsonl"),
        LivePanel(console, log_path=out / TRAINER_LOG),
        RewardCurves(out / "metrics.jsonl", out / "rewards.png"),
    )
