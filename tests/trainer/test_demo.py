"""The CPU demo (README command 1) and its report: outputs written, and the report tells the truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.demo import run_demo
from trainer.demo_report import reward_trends, write_report


def _write_metrics(path: Path, series: dict[str, list[tuple[float, float]]]) -> Path:
    steps = len(next(iter(series.values())))
    with path.open("w") as handle:
        for i in range(steps):
            record = {"step": i + 1, "loss": 0.0}
            for name, values in series.items():
                record[f"rewards/{name}/mean"], record[f"rewards/{name}/std"] = values[i]
            handle.write(json.dumps(record) + "\n")
    return path


def test_report_says_what_moved_and_what_could_not(tmp_path):
    metrics = _write_metrics(tmp_path / "metrics.jsonl", {
        "answer": [(0.1 + 0.02 * i, 0.1) for i in range(12)],
        "format": [(0.0, 0.0)] * 12,
        "noisy": [(0.2, 0.1)] * 12,
        "math": [(0.5 - 0.03 * i, 0.1) for i in range(12)],
    })
    trends = {t.name: t for t in reward_trends(metrics)}
    assert trends["answer"].verdict == "improved"
    # first and last are the means of the first and last 5 steps: 0.1..0.18 and 0.24..0.32
    assert trends["answer"].first == pytest.approx(0.14)
    assert trends["answer"].last == pytest.approx(0.28)
    assert trends["format"].verdict == "no change" and trends["format"].varied_steps == 0
    assert trends["noisy"].verdict == "no change" and trends["noisy"].varied_steps == 12
    assert trends["math"].verdict == "got worse"
    report = write_report(tmp_path / "report.md", trends=list(trends.values()),
                          services={"answer": "http://127.0.0.1:1"}, skipped={"math_equiv": "not installed"},
                          facts={"model": "tiny"}).read_text()
    assert "| answer | 0.140 | 0.280 | +0.140 | improved |" in report
    assert "never could in this run: format" in report
    assert "although the scores varied within groups: noisy (12 of 12 steps varied)" in report
    assert "Got worse: math" in report
    assert "math_equiv: not run (not installed)" in report


def test_demo_writes_every_output(tmp_path):
    out = run_demo(tmp_path / "demo", steps=2)
    for name in ("metrics.jsonl", "rewards.png", "report.md", "adapter/adapter_config.json",
                 "adapter/resolved_recipe.yaml"):
        assert (out / name).is_file(), name
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in steps if "loss" in m] == [1, 2]
    report = (out / "report.md").read_text()
    assert "2 GRPO steps on CPU" in report
    for reward in ("format", "answer", "math"):
        assert f"| {reward} |" in report
        assert f"rewards/{reward}/mean" in steps[0]
    assert "http://127.0.0.1:" in report  # the rewards went over real HTTP
