"""The rewardstack CLI as a user runs it: score a file, bad input, a service that is down, serve."""

import contextlib
import json
import os
import signal
import subprocess
import sys

import httpx
import psutil

from rewardstack.cli import main
from rewardstack.example import EXAMPLE_FILE
from tests.helpers import ROOT, free_port, serve_app, wait_until


def test_score_writes_every_line_back_with_rewards(tmp_path, capsys):
    from services.regex_format.main import app
    out = tmp_path / "scored.jsonl"
    with serve_app(app) as url:
        code = main(["score", str(EXAMPLE_FILE), "--reward", f"format={url}", "--reward",
                     "solution=inproc://regex_format", "--params", 'solution={"mode": "pattern", '
                     '"pattern": ".*<answer>.+</answer>.*"}', "--out", str(out), "--chunk", "3"])
    assert code == 0
    source = [json.loads(line) for line in EXAMPLE_FILE.read_text().splitlines()]
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in scored] == [r["id"] for r in source]
    assert scored[0]["rewards"] == {"format": 1.0, "solution": 1.0}
    assert scored[3]["rewards"]["format"] == 0.0  # answer before think
    assert scored[6]["rewards"]["solution"] == 0.0  # empty answer
    err = capsys.readouterr().err
    assert "format" in err and "mean" in err


def test_bad_line_is_named_and_nothing_is_sent(tmp_path, capsys):
    bad = tmp_path / "in.jsonl"
    bad.write_text('{"completion": "ok"}\n{"completion": 3}\n')
    code = main(["score", str(bad), "--reward", f"f=http://127.0.0.1:{free_port()}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "in.jsonl:2" in err and "completion" in err


def test_a_refused_port_stops_score_at_unreachable_s_naming_the_reward_once(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"completion": "x", "reference": "x"}\n')
    url = f"http://127.0.0.1:{free_port()}"
    # --deadline far beyond the test: reaching it would mean the refused port was not given up on
    code = main(["score", str(src), "--reward", f"vqa={url}", "--deadline", "600", "--unreachable-s", "0.2"])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"reward 'vqa' at {url}: no answer: unreachable for 0.2s" in err
    assert err.count(url) == 1 and "ConnectError" in err
    assert "--resume" in err and (tmp_path / "in.scored.partial.jsonl").exists()


def test_score_gives_up_on_a_refused_port_as_a_recipe_entry_does():
    from proto.rewards import RewardEntry
    from rewardstack.cli import build_parser

    args = build_parser().parse_args(["score", "in.jsonl", "--reward", "vqa=http://127.0.0.1:1"])
    assert args.unreachable_s == RewardEntry.model_fields["unreachable_s"].default == 5.0


def test_params_for_unknown_reward_is_refused(capsys):
    code = main(["score", str(EXAMPLE_FILE), "--reward", "a=http://x", "--params", "b={}"])
    assert code == 2 and "names no --reward" in capsys.readouterr().err


def test_serve_prints_urls_and_stops_all_on_interrupt():
    base = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardstack", "serve", "regex_format", "--base-port", str(base)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
        # A suite started in the background (`cmd &` without job control) ignores SIGINT, and
        # children inherit that: serve gets Ctrl-C's default meaning back, as in a terminal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    family = [psutil.Process(proc.pid)]
    try:
        line = proc.stdout.readline()
        # The services serve started (in sessions of their own): reaped below whatever happens.
        family += family[0].children(recursive=True)
        assert line.split() == ["regex_format", f"http://127.0.0.1:{base}"]
        assert httpx.get(f"http://127.0.0.1:{base}/readyz").status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0  # a hang guard: stopping waits out the services' 5 s drain grace
        wait_until(lambda: _refused(f"http://127.0.0.1:{base}/healthz"), "the service stopped with serve")
    finally:
        for p in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


def _refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=5)
    except httpx.ConnectError:
        return True
    return False


def test_help_explains_every_command(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    text = capsys.readouterr().out
    for command in ("serve", "score", "train", "eval", "merge"):
        assert command in text


def test_images_with_the_same_name_and_size_stay_distinct(tmp_path):
    from PIL import Image

    from rewardstack.score.run import read_items
    for folder, colour in (("a", "red"), ("b", "blue")):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (4, 4), colour).save(tmp_path / folder / "x.bmp")  # same byte size
    src = tmp_path / "in.jsonl"
    src.write_text('{"completion": "1", "image": "a/x.bmp"}\n{"completion": "2", "image": "b/x.bmp"}\n'
                   '{"completion": "3", "image": "a/x.bmp"}\n')
    assert (tmp_path / "a/x.bmp").stat().st_size == (tmp_path / "b/x.bmp").stat().st_size
    _, items, images = read_items(src)
    assert items[0].image_id == items[2].image_id != items[1].image_id
    assert len(images) == 2


def test_numbers_out_of_range_are_usage_errors_not_tracebacks(capsys):
    import pytest

    for argv, message in ((["score", str(EXAMPLE_FILE), "--reward", "f=inproc://regex_format", "--chunk", "0"], "--chunk: 0 must be above 0"),
                          (["serve", "--base-port", "70000"], "ports end at 65535"),
                          (["eval", "r.yaml", "--limit", "-1"], "--limit: -1 must be above 0")):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2
        assert message in capsys.readouterr().err


def test_a_misspelled_service_name_for_serve_is_named_with_the_closest(capsys):
    assert main(["serve", "regex_fromat"]) == 2
    assert "no service 'regex_fromat'; did you mean regex_format?" in capsys.readouterr().err
