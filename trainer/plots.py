"""PNG plots of a run: reward curves per reward from metrics.jsonl, reward histograms from eval."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, safe in containers and worker threads

import matplotlib.pyplot as plt  # after use("Agg"): the backend must be chosen first

_REWARD_KEY = re.compile(r"^rewards/(?P<name>[^/]+)/(?P<stat>mean|std)$")


def read_reward_series(
    metrics_jsonl: str | Path,
) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """{reward name: {"mean": [(step, value)], "std": [...]}}; null or NaN values are left out.

    The total `reward` (TRL's weighted sum) is returned under the name "total".
    """
    series: dict[str, dict[str, list[tuple[float, float]]]] = {}
    with open(metrics_jsonl, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            step = record.get("step")
            if step is None:
                continue
            for key, value in record.items():
                match = _REWARD_KEY.match(key)
                name, stat = (match["name"], match["stat"]) if match else (None, None)
                if key in ("reward", "reward_std"):
                    name, stat = "total", "mean" if key == "reward" else "std"
                if name is None or not isinstance(value, int | float) or not math.isfinite(value):
                    continue
                series.setdefault(name, {"mean": [], "std": []})[stat].append((step, value))
    return {name: s for name, s in series.items() if s["mean"]}


def _grid(count: int) -> tuple[int, int]:
    cols = min(count, 3)
    return math.ceil(count / cols), cols


def plot_reward_curves(metrics_jsonl: str | Path, out_png: str | Path) -> Path:
    """One panel per reward (mean with a ±std band where logged), plus the weighted total.

    Raises ValueError when the file holds no reward metric, so an empty plot is never mistaken
    for a flat curve.
    """
    series = read_reward_series(metrics_jsonl)
    if not series:
        raise ValueError(f"{metrics_jsonl} has no 'rewards/<name>/mean' or 'reward' values to plot")
    names = sorted(n for n in series if n != "total") + (["total"] if "total" in series else [])
    rows, cols = _grid(len(names))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        steps, means = zip(*series[name]["mean"], strict=True)
        ax.plot(steps, means, marker="o", markersize=2.5, linewidth=1.2)
        std = dict(series[name]["std"])
        if std and all(s in std for s in steps):
            low = [m - std[s] for s, m in zip(steps, means, strict=True)]
            high = [m + std[s] for s, m in zip(steps, means, strict=True)]
            ax.fill_between(steps, low, high, alpha=0.2)
        ax.set_title(name if name != "total" else "total (weighted)", fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_histograms(
    rewards: Mapping[str, Sequence[float | None]], out_dir: str | Path, bins: int = 20
) -> dict[str, Path]:
    """`reward_hist_<name>.png` per reward; nulls are counted in the title, not plotted."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, values in rewards.items():
        scored = [v for v in values if v is not None and math.isfinite(v)]
        fig, ax = plt.subplots(figsize=(5, 3.2))
        if scored:
            ax.hist(scored, bins=bins)
        else:
            ax.text(0.5, 0.5, "no scored item", ha="center", va="center", transform=ax.transAxes)
        nulls = len(values) - len(scored)
        ax.set_title(f"{name}: n={len(scored)}, null={nulls}", fontsize=10)
        ax.set_xlabel("reward")
        ax.set_ylabel("items")
        fig.tight_layout()
        written[name] = _save(fig, out_dir / f"reward_hist_{_safe(name)}.png")
    return written


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _save(fig: plt.Figure, out_png: str | Path) -> Path:
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, dpi=100)
    finally:
        plt.close(fig)
    return out
