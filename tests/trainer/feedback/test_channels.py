"""Which channel shows what: the live panel on a terminal, one plain line every tenth of the run off
one, and TRL's per-step dicts in trainer_log.txt and metrics.jsonl in both cases."""

from __future__ import annotations

import io
import json
from collections import defaultdict, deque

import pytest
from rich.console import Console
from transformers import TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import (
    CallbackHandler,
    DefaultFlowCallback,
    PrinterCallback,
    ProgressCallback,
)

from trainer.feedback.callbacks import Feedback
from trainer.feedback.panel import Sample, trl_samples
from trainer.feedback.progress import every_n_steps


def _state(step: int, max_steps: int) -> TrainerState:
    state = TrainerState()
    state.global_step, state.max_steps, state.epoch = step, max_steps, step / max_steps
    return state


def _logs(step: int) -> dict:
    return {"loss": 0.1 * step, "reward": 0.5, "rewards/fmt/mean": 0.25, "rewards/fmt/std": 0.05}


class _FakeGrpoTrainer:
    """The shape of GRPOTrainer._logs in TRL 1.16, and its callback list."""

    def __init__(self, args: TrainingArguments | None = None) -> None:
        self._logs = {"prompt": deque(maxlen=4), "completion": deque(maxlen=4),
                      "rewards": defaultdict(lambda: deque(maxlen=4)),
                      "extra": defaultdict(lambda: deque(maxlen=4))}
        for i in range(6):
            self._logs["prompt"].append([{"role": "user", "content": [
                {"type": "image", "text": None}, {"type": "text", "text": f"How many stars? ({i})"}]}])
            # TRL shows bytes that form no character (cut off, or lone) as U+FFFD
            content = f"answer \ufffd{i}" + "\ufffd" * (i % 2)
            self._logs["completion"].append([{"role": "assistant", "content": content}])
            self._logs["rewards"]["fmt"].append(float(i))
            self._logs["extra"]["reference/fmt"].append(str(i))
        # What transformers.Trainer.__init__ adds: the flow callback, then tqdm or print().
        printer = PrinterCallback if args is not None and args.disable_tqdm else ProgressCallback
        self.callback_handler = CallbackHandler([DefaultFlowCallback, printer], None, None, None, None)

    def remove_callback(self, callback) -> None:
        self.callback_handler.remove_callback(callback)


def test_trl_samples_pairs_the_latest_completions_with_prompt_reference_and_scores() -> None:
    latest = trl_samples(_FakeGrpoTrainer())(2)
    assert latest == [Sample("How many stars? (4)", "answer 4", "4", {"fmt": 4.0}),
                      Sample("How many stars? (5)", "answer 5", "5", {"fmt": 5.0})]
    assert trl_samples(object())(2) == []


def _run(tmp_path, console: Console, disable_tqdm: bool, steps: int) -> tuple[_FakeGrpoTrainer, Feedback]:
    args = TrainingArguments(output_dir=str(tmp_path), disable_tqdm=disable_tqdm, report_to="none")
    trainer = _FakeGrpoTrainer(args)
    feedback = Feedback(tmp_path, console)
    handler = trainer.callback_handler
    for callback in feedback.callbacks:
        handler.add_callback(callback)
    feedback.attach(trainer)
    assert not [cb for cb in handler.callbacks if isinstance(cb, ProgressCallback | PrinterCallback)]
    control = TrainerControl()
    handler.on_train_begin(args, _state(0, steps), control)
    for step in range(1, steps + 1):
        handler.on_log(args, _state(step, steps), control, _logs(step))
    handler.on_log(args, _state(steps, steps), control, {"train_runtime": 12.0})  # TRL's last dict
    handler.on_train_end(args, _state(steps, steps), control)
    return trainer, feedback


def _kept(tmp_path, steps: int) -> None:
    log_lines = (tmp_path / "trainer_log.txt").read_text().splitlines()
    assert len(log_lines) == steps + 1 and "'loss': 0.1" in log_lines[0]
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == steps + 1
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["train_runtime"] == 12.0


@pytest.mark.parametrize("disable_tqdm", [False, True])
def test_on_a_terminal_the_panel_replaces_trl_printing(tmp_path, capsys, disable_tqdm) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=140, color_system=None)
    _run(tmp_path, console, disable_tqdm, steps=3)
    printed = capsys.readouterr()
    assert "'loss'" not in printed.out + printed.err and "{'loss'" not in buffer.getvalue()
    _kept(tmp_path, 3)
    text = buffer.getvalue()
    for expected in ("How many stars? (5)", "answer 5", "reference", "3/3"):
        assert expected in text
    assert "\ufffd" not in text


@pytest.mark.parametrize("disable_tqdm", [False, True])
def test_off_a_terminal_one_plain_line_every_tenth_of_the_run(tmp_path, capsys, disable_tqdm) -> None:
    buffer = io.StringIO()
    _run(tmp_path, Console(file=buffer, force_terminal=False, width=300), disable_tqdm, steps=100)
    printed = capsys.readouterr()
    assert printed.out + printed.err == ""  # neither TRL's dicts nor its bar
    lines = buffer.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == [f"{s}/100" for s in range(10, 101, 10)]
    assert "loss 1.000" in lines[0] and "fmt 0.250" in lines[0] and "\x1b" not in buffer.getvalue()
    _kept(tmp_path, 100)


@pytest.mark.parametrize(("max_steps", "every"), [(100, 10), (2, 1), (7, 1), (25, 3), (1000, 100)])
def test_progress_lines_come_about_ten_a_run(max_steps, every) -> None:
    assert every_n_steps(max_steps) == every
