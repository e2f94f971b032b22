"""The CPU demo (README command 1) and its report: the policy learns, and the report tells the truth."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from rewardstack import cli
from rewardstack.demo.report import EvalComparison, EvalSide, reward_trends, write_report
from rewardstack.demo.run import DemoError, run_demo


def _write_metrics(path: Path, series: dict[str, list[tuple[float, float]]]) -> Path:
    steps = len(next(iter(series.values())))
    with path.open("w") as handle:
        for i in range(steps):
            record = {"step": i + 1, "loss": 0.0}
            for name, values in series.items():
                record[f"rewards/{name}/mean"], record[f"rewards/{name}/std"] = values[i]
            handle.write(json.dumps(record) + "\n")
    return path


def _side(completions: list[str], score: float) -> EvalSide:
    return EvalSide(completions, {"format": [score] * len(completions)})


class TestReport:
    def test_changes_count_only_beyond_two_standard_errors(self, tmp_path):
        metrics = _write_metrics(tmp_path / "metrics.jsonl", {
            "answer": [(0.1 + 0.02 * i, 0.1) for i in range(24)],
            "format": [(0.0, 0.0)] * 24,
            # alternating 0.2 / 0.4: each end's mean is 0.3, the last step alone would be +0.1
            "noisy": [(0.2 + 0.2 * (i % 2), 0.1) for i in range(24)],
            "math": [(0.9 - 0.03 * i, 0.1) for i in range(24)],
        })
        trends = {t.name: t for t in reward_trends(metrics)}
        answer = trends["answer"]
        # means of steps 1-10 and 15-24 of 0.1 + 0.02 i: 0.19 and 0.47
        assert answer.first == pytest.approx(0.19) and answer.last == pytest.approx(0.47)
        # each end is 10 evenly spaced values 0.02 apart: sample variance 0.02² · 55/6
        spread = 0.02 ** 2 * 55 / 6
        assert answer.threshold == pytest.approx(2 * math.sqrt(2 * spread / 10))
        assert answer.verdict == "improved"
        assert trends["format"].verdict == "no change beyond noise"
        assert trends["format"].varied_steps == 0
        noisy = trends["noisy"]
        assert noisy.verdict == "no change beyond noise" and noisy.varied_steps == 24
        assert trends["math"].verdict == "got worse"
        report = write_report(tmp_path / "report.md", trends=list(trends.values()),
                              services={"answer": "http://127.0.0.1:1"},
                              skipped={"math_equiv": "not installed"},
                              facts={"model": "tiny"}).read_text()
        assert "| answer | 0.190 | 0.470 | +0.280 |" in report
        assert "first vs the last 10 logged steps" in report
        assert "Never varied within a group" in report and "format" in report
        assert "noisy (24 of 24 steps varied)" in report
        assert "Got worse: math" in report
        assert "math_equiv: not run (not installed)" in report

    def test_one_string_for_every_prompt_is_called_collapsed(self, tmp_path):
        comparison = EvalComparison(
            questions=[f"q{i}" for i in range(16)], references=["red"] * 16,
            base=_side([f"junk {i}" for i in range(16)], 0.0),
            trained=_side(["rererere"] * 16, 0.3),
        )
        report = write_report(tmp_path / "report.md", trends=[], services={}, skipped={},
                              facts={}, comparison=comparison).read_text()
        assert "1/16 = 0.06 (collapsed" in report
        assert "**Collapsed**" in report and "`rererere`" in report
        assert "| q0 | red | `junk 0` | `rererere` |" in report  # base and trained side by side
        assert "16/16 = 1.00 |" in report  # the base wrote a different string for each

    def test_varied_outputs_are_not_called_collapsed(self, tmp_path):
        comparison = EvalComparison(["a", "b"], ["1", "2"], _side(["x", "x"], 0.0),
                                    _side(["<answer>1</answer>", "<answer>2</answer>"], 1.0))
        report = write_report(tmp_path / "report.md", trends=[], services={}, skipped={},
                              facts={}, comparison=comparison).read_text()
        assert "2 distinct strings for 2 held-out prompts" in report
        assert "ollapsed" not in report.split("| trained |")[1].split("\n")[0]

    def test_the_report_says_whether_the_rewards_hold_the_step(self, tmp_path):
        def report(timing):
            return write_report(tmp_path / "report.md", trends=[], services={}, skipped={}, facts={},
                                timing=timing).read_text()

        cheap = report([(1, 30.0, 1000.0), (2, 20.0, 1000.0), (3, 25.0, 1000.0)])
        assert ("Reward phase: 2.5 % of the step (25 ms of 1 s, medians): the step waits on "
                "generation and the policy update, not on the rewards.") in cheap
        assert "the rewards hold the step" in report([(1, 900.0, 1000.0)])
        assert "Where the step time goes" not in report([])


class TestSteps:
    def test_zero_steps_is_refused_before_anything_runs(self, tmp_path):
        with pytest.raises(DemoError, match="at least 1 GRPO step"):
            run_demo(tmp_path / "demo", steps=0)
        assert not (tmp_path / "demo").exists()

    def test_the_cli_says_so_in_one_line_with_exit_2(self, tmp_path, capsys):
        assert cli.main(["demo", "--out", str(tmp_path / "demo"), "--steps", "0"]) == 2
        out = capsys.readouterr().err.strip()
        assert "--steps 0" in out and len(out.splitlines()) == 1


@pytest.mark.slow
def test_the_demo_learns_the_format_and_the_answers_and_the_report_says_what_the_policy_writes(
        tmp_path):
    """The demo exactly as README command 1 runs it (default steps, fixed seed)."""
    out = run_demo(tmp_path / "demo")
    for name in ("metrics.jsonl", "rewards.png", "report.md", "adapter/adapter_config.json",
                 "adapter/resolved_recipe.yaml"):
        assert (out / name).is_file(), name
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for reward in ("format", "answer"):  # the answer reward is the exact match of the <answer>
        series = [m[f"rewards/{reward}/mean"] for m in steps if f"rewards/{reward}/mean" in m]
        assert len(series) == 100
        assert statistics.fmean(series[-10:]) > statistics.fmean(series[:10]), reward
    report = (out / "report.md").read_text()
    assert "http://127.0.0.1:" in report  # the rewards went over real HTTP
    assert "% of the step" in report.split("## Where the step time goes")[1]
    for reward in ("format", "answer"):
        assert "improved" in report.split(f"| {reward} |")[1].split("\n")[0], reward
    # The distinct count and the collapse verdict agree with the completions the table shows.
    rows = report.split("| question | reference | base | trained |")[1].strip().splitlines()[1:17]
    trained = {row.split("|")[4].strip() for row in rows}
    assert len(trained) > 1  # the trained policy does not write one string for every prompt
    summary = report.split("| trained |")[1].split("\n")[0]
    assert f"{len(trained)}/16 = " in summary and "collapsed" not in summary
    assert "\ufffd" not in report  # bytes that form no character are not shown as U+FFFD


class _Stop(Exception):
    pass


def test_seed_sets_the_data_draws_and_training(tmp_path, monkeypatch):
    import contextlib

    import rewardstack.demo.model
    import rewardstack.serve.launch
    import trainer.train

    seen = {}

    def train(recipe, callbacks=()):
        seen["recipe"] = recipe
        raise _Stop

    @contextlib.contextmanager
    def services(names, host):
        yield {name: "http://127.0.0.1:1" for name in names}

    monkeypatch.setattr(trainer.train, "run_training", train)
    monkeypatch.setattr(rewardstack.serve.launch, "launch_services", services)
    monkeypatch.setattr(rewardstack.demo.model, "demo_model_dir", lambda: tmp_path)
    with pytest.raises(_Stop):
        run_demo(tmp_path / "demo", steps=3, seed=7)
    assert (seen["recipe"].data.seed, seen["recipe"].grpo["seed"]) == (7, 7)


def test_the_cli_passes_the_seed(monkeypatch, tmp_path):
    import rewardstack.demo.run

    got = {}

    def demo(out, **kw):
        got.update(kw)
        raise _Stop

    monkeypatch.setattr(rewardstack.demo.run, "run_demo", demo)
    with pytest.raises(_Stop):
        cli.main(["demo", "--out", str(tmp_path), "--seed", "2"])
    assert got == {"seed": 2}
