"""Feedback callbacks: metrics.jsonl lines, the rate-limited live panel, and the reward-curve PNG."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console
from transformers import TrainerControl, TrainerState

from trainer.feedback import panel as feedback
from trainer.feedback.callbacks import MetricsWriter, RewardCurves
from trainer.feedback.panel import LivePanel, Sample
from trainer.feedback.plots import (
    plot_histograms,
    plot_reward_curves,
    read_reward_series,
    reward_figure,
    smooth,
)


def _state(step: int = 0, max_steps: int = 10) -> TrainerState:
    state = TrainerState()
    state.global_step, state.max_steps, state.epoch = step, max_steps, step / max_steps
    return state


def _logs(step: int) -> dict:
    return {"loss": 0.1 * step, "reward": 0.5 + 0.05 * step, "reward_std": 0.2,
            "rewards/fmt/mean": 0.1 * step, "rewards/fmt/std": 0.05,
            "rewards/acc/mean": float("nan") if step == 2 else 0.3,
            "rewards/acc/failed": 0.0, "rewards/acc/latency_ms": 12.5,
            "completions/mean_length": 4.0 + step, "entropy": 2.0 - 0.1 * step}


def _run_writer(path: Path, steps: int = 4) -> None:
    writer, control = MetricsWriter(path), TrainerControl()
    writer.on_train_begin(None, _state(0), control)
    for step in range(1, steps + 1):
        writer.on_log(None, _state(step), control, logs=_logs(step))


class TestMetricsWriter:
    def test_one_parseable_line_per_log_with_nan_as_null(self, tmp_path: Path) -> None:
        path = tmp_path / "out" / "metrics.jsonl"
        _run_writer(path)
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert [r["step"] for r in records] == [1, 2, 3, 4]
        assert records[1]["rewards/acc/mean"] is None
        assert records[3]["rewards/fmt/mean"] == pytest.approx(0.4)

    def test_a_fresh_run_truncates_a_resumed_run_appends(self, tmp_path: Path) -> None:
        path = tmp_path / "metrics.jsonl"
        _run_writer(path)
        _run_writer(path, steps=2)
        assert len(path.read_text().splitlines()) == 2
        writer = MetricsWriter(path)
        writer.on_train_begin(None, _state(2), TrainerControl())
        writer.on_log(None, _state(3), TrainerControl(), logs=_logs(3))
        assert len(path.read_text().splitlines()) == 3


class TestRewardCurves:
    def test_png_is_a_valid_nonempty_image(self, tmp_path: Path) -> None:
        metrics = tmp_path / "metrics.jsonl"
        _run_writer(metrics)
        png = plot_reward_curves(metrics, tmp_path / "rewards.png")
        with Image.open(png) as image:
            assert image.format == "PNG"
            assert image.size[0] > 100 and image.size[1] > 100

    def test_one_figure_of_titled_labelled_panels_and_no_empty_cell(self, tmp_path: Path) -> None:
        metrics = tmp_path / "metrics.jsonl"
        _run_writer(metrics)
        fig = reward_figure(metrics)
        # acc, fmt, total, then loss, length and entropy (no kl: beta 0 logs none)
        titles = [ax.get_title() for ax in fig.axes]
        assert titles == ["reward: acc", "reward: fmt", "total reward (weighted sum)", "loss",
                          "completion length", "policy entropy"]
        assert fig.get_suptitle()
        for ax in fig.axes:
            assert ax.get_visible() and ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
            assert any(len(line.get_xdata()) for line in ax.get_lines()), ax.get_title()
            labels = ax.get_legend_handles_labels()[1]
            assert "5-step moving mean" in labels, ax.get_title()
        fmt = fig.axes[1]
        assert "±1 std across the step's completions" in fmt.get_legend_handles_labels()[1]
        # panels tile the figure: no two overlap and each row's panels span the same width
        boxes = [ax.get_position() for ax in fig.axes]
        rows = sorted({round(b.y0, 3) for b in boxes})
        assert len(rows) == 2
        for y in rows:
            row = [b for b in boxes if round(b.y0, 3) == y]
            assert len(row) == 3

    def test_a_short_last_row_is_widened_not_left_with_empty_cells(self, tmp_path: Path) -> None:
        metrics = tmp_path / "metrics.jsonl"
        metrics.write_text("".join(json.dumps({"step": i, "reward": 0.1 * i, "reward_std": 0.1,
                                               "loss": 0.0}) + "\n" for i in range(1, 4)))
        fig = reward_figure(metrics)
        assert [ax.get_title() for ax in fig.axes] == ["total reward (weighted sum)", "loss"]
        left, right = (ax.get_position() for ax in fig.axes)
        assert right.x1 > 0.9 and left.x0 < 0.1  # two panels share the row's whole width

    def test_smoothing_is_a_centred_moving_mean(self) -> None:
        assert smooth([0, 0, 10, 0, 0], window=3) == [0, 10 / 3, 10 / 3, 10 / 3, 0]
        assert smooth([1.0], window=5) == [1.0]

    def test_series_skip_nulls_and_include_the_total(self, tmp_path: Path) -> None:
        metrics = tmp_path / "metrics.jsonl"
        _run_writer(metrics)
        series = read_reward_series(metrics)
        assert sorted(series) == ["acc", "fmt", "total"]
        assert [step for step, _ in series["acc"]["mean"]] == [1, 3, 4]

    def test_no_reward_metric_is_an_error_not_an_empty_plot(self, tmp_path: Path) -> None:
        metrics = tmp_path / "metrics.jsonl"
        metrics.write_text(json.dumps({"step": 1, "loss": 0.3}) + "\n")
        with pytest.raises(ValueError, match="no 'rewards/<name>/mean'"):
            plot_reward_curves(metrics, tmp_path / "rewards.png")

    def test_callback_writes_the_png_at_train_end(self, tmp_path: Path) -> None:
        metrics = tmp_path / "metrics.jsonl"
        _run_writer(metrics)
        RewardCurves(metrics, tmp_path / "rewards.png").on_train_end(None, _state(4),
                                                                     TrainerControl())
        assert (tmp_path / "rewards.png").stat().st_size > 0

    def test_callback_survives_a_run_without_rewards(self, tmp_path: Path, caplog) -> None:
        RewardCurves(tmp_path / "absent.jsonl", tmp_path / "rewards.png").on_train_end(
            None, _state(0), TrainerControl())
        assert not (tmp_path / "rewards.png").exists()
        assert "reward curves not written" in caplog.text

    def test_histograms_count_nulls(self, tmp_path: Path) -> None:
        written = plot_histograms({"fmt": [0.0, 1.0, None], "judge/v2": [None]}, tmp_path)
        assert sorted(p.name for p in written.values()) == ["reward_hist_fmt.png",
                                                            "reward_hist_judge_v2.png"]
        for path in written.values():
            with Image.open(path) as image:
                image.verify()


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=140, color_system=None), buffer


class TestLivePanel:
    def test_refreshes_are_rate_limited_and_the_end_is_always_drawn(self, monkeypatch) -> None:
        clock = _Clock()
        monkeypatch.setattr(feedback.time, "monotonic", clock)
        console, _ = _terminal()
        panel, control = LivePanel(console, max_refresh_per_s=2.0), TrainerControl()
        panel.on_train_begin(None, _state(0), control)
        for step in range(1, 11):  # ten logs within 0.45 s: one redraw
            clock.now += 0.05
            panel.on_log(None, _state(step), control, logs=_logs(step))
        assert panel.refreshes == 1
        clock.now += 0.5
        panel.on_log(None, _state(11), control, logs=_logs(11))
        assert panel.refreshes == 2
        panel.on_train_end(None, _state(11), control)
        assert panel.refreshes == 3

    def test_panel_shows_losses_rewards_latency_and_truncated_completions(self) -> None:
        console, buffer = _terminal()
        long = "<think>" + "x" * 400 + "</think>"
        samples = lambda n: [Sample("How many?", long, "3", {"fmt": 1.0, "acc": None})]  # noqa: E731
        panel = LivePanel(console, samples=samples, max_chars=60)
        panel.on_train_begin(None, _state(0), TrainerControl())
        panel.on_log(None, _state(3), TrainerControl(), logs=_logs(3))
        panel.on_train_end(None, _state(3), TrainerControl())
        text = buffer.getvalue()
        for expected in ("step 3/10", "loss", "latency_ms", "12.500", "fmt", "acc=null", "…"):
            assert expected in text
        assert "x" * 100 not in text

    def test_disabled_without_a_terminal(self) -> None:
        buffer = io.StringIO()
        panel = LivePanel(Console(file=buffer, force_terminal=False))
        panel.on_train_begin(None, _state(0), TrainerControl())
        panel.on_log(None, _state(1), TrainerControl(), logs=_logs(1))
        panel.on_train_end(None, _state(1), TrainerControl())
        assert not panel.enabled and panel.refreshes == 0 and buffer.getvalue() == ""
