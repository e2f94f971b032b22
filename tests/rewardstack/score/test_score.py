"""`rewardstack score` never loses results and never hides a failure: partial files, resume, status, exit codes."""

import json

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from proto.models import ItemDetail, ScoreRequest, ScoreResponse, ServiceInfo, ServiceLimits
from rewardstack.cli import main
from rewardstack.example import EXAMPLE_FILE
from rewardstack.score.run import partial_path
from tests.helpers import free_port, serve_app


def _lines(path):
    return [json.loads(t) for t in path.read_text().splitlines()]


def _service(answer) -> FastAPI:
    """A minimal service of the contract whose /v1/score is `answer(request, call_number)`."""
    app, calls = FastAPI(), []

    @app.get("/v1/info")
    def info():
        return ServiceInfo(name="fake", version="0", score_range=(0.0, 1.0), params_schema={},
                           limits=ServiceLimits(max_batch=8, max_body_bytes=1 << 20, max_concurrency=1,
                                                max_queue=1), fingerprint="x").model_dump()

    @app.post("/v1/score")
    def score(req: ScoreRequest):
        calls.append(1)
        return answer(req, len(calls))

    return app


def _response(n: int, reward: float | None, detail: ItemDetail) -> dict:
    return ScoreResponse(rewards=[reward] * n, details=[detail] * n, service="fake", version="0",
                         elapsed_ms=1.0).model_dump()


def _failing_judge() -> FastAPI:
    """Answers, but every item failed upstream: what llm_judge does when its upstream is unreachable."""
    return _service(lambda req, _: _response(len(req.items), None,
                                             ItemDetail(status="error", reason="upstream unreachable")))


def _dies_after_first_call() -> FastAPI:
    """Scores the first request, then refuses: a run that stops midway."""
    def answer(req, call):
        if call > 1:
            return JSONResponse({"error": {"type": "validation_error", "message": "gone"}}, status_code=422)
        return _response(len(req.items), 1.0, ItemDetail())
    return _service(answer)


def test_a_run_stopped_midway_keeps_its_lines_as_partial_and_resume_finishes_it(tmp_path, capsys):
    out = tmp_path / "x.scored.jsonl"
    with serve_app(_dies_after_first_call()) as url:
        code = main(["score", str(EXAMPLE_FILE), "--reward", f"f={url}", "--out", str(out), "--chunk", "4"])
    assert code == 2
    assert not out.exists()  # nothing that looks complete
    kept = _lines(partial_path(out))
    assert len(kept) == 4 and all(x["rewards"] == {"f": 1.0} for x in kept)
    assert "4 of 10 lines scored" in capsys.readouterr().err
    assert main(["score", str(EXAMPLE_FILE), "--reward", "f=inproc://regex_format", "--out", str(out), "--resume"]) == 0
    done = _lines(out)
    assert len(done) == 10 and done[:4] == kept
    assert [x["id"] for x in done] == [json.loads(t)["id"] for t in EXAMPLE_FILE.read_text().splitlines()]


def test_rerun_against_a_dead_service_leaves_the_old_output_intact(tmp_path, capsys):
    out = tmp_path / "x.scored.jsonl"
    out.write_text("previous results\n")
    code = main(["score", str(EXAMPLE_FILE), "--reward", f"f=http://127.0.0.1:{free_port()}",
                 "--deadline", "1", "--out", str(out)])
    assert code == 2
    assert out.read_text() == "previous results\n"
    err = capsys.readouterr().err
    assert "--resume" in err and "unchanged" in err
    assert partial_path(out).name == "x.scored.partial.jsonl"


def test_every_line_carries_status_and_reason_and_nulls_fail_the_run(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"completion": "liver"}\n{"completion": "x", "reference": "x"}\n')
    out = tmp_path / "out.jsonl"
    code = main(["score", str(src), "--reward", "vqa=inproc://vqa_accuracy", "--out", str(out)])
    assert code == 1  # one null of two is above the default --max-null-fraction 0
    first, second = _lines(out)
    assert first["rewards"] == {"vqa": None} and first["status"] == {"vqa": "unscorable"}
    assert "reference" in first["reason"]["vqa"]
    assert second["rewards"] == {"vqa": 1.0} and second["status"] == {"vqa": "ok"}
    assert second["reason"] == {"vqa": None}
    err = capsys.readouterr().err
    assert "vqa null: 1× unscorable: no reference" in err
    assert main(["score", str(src), "--reward", "vqa=inproc://vqa_accuracy", "--out", str(out),
                 "--max-null-fraction", "0.5"]) == 0


def test_items_that_errored_exit_non_zero_with_the_reason(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"completion": "a"}\n{"completion": "b"}\n')
    with serve_app(_failing_judge()) as url:
        code = main(["score", str(src), "--reward", f"judge={url}", "--max-null-fraction", "1"])
    assert code == 1
    err = capsys.readouterr().err
    assert "judge: 2 of 2 items failed" in err and "upstream unreachable" in err


def test_resume_scores_only_what_the_partial_file_lacks(tmp_path):
    full = tmp_path / "full.jsonl"
    assert main(["score", str(EXAMPLE_FILE), "--reward", "f=inproc://regex_format", "--out", str(full)]) == 0
    out = tmp_path / "resumed.jsonl"
    kept = _lines(full)[:3]
    for line in kept:
        line["rewards"]["f"] = 0.5  # a value the service never gives: proves these were not rescored
    partial_path(out).write_text("".join(json.dumps(x) + "\n" for x in kept) + '{"id": "q4", "compl')
    assert main(["score", str(EXAMPLE_FILE), "--reward", "f=inproc://regex_format", "--out", str(out),
                 "--resume", "--chunk", "2"]) == 0
    resumed = _lines(out)
    assert [x["rewards"]["f"] for x in resumed[:3]] == [0.5] * 3
    assert resumed[3:] == _lines(full)[3:]
    assert not partial_path(out).exists()


def test_resume_refuses_a_partial_file_of_another_input(tmp_path, capsys):
    out = tmp_path / "o.jsonl"
    partial_path(out).write_text('{"id": "other", "completion": "z", "rewards": {"f": 1.0}}\n')
    code = main(["score", str(EXAMPLE_FILE), "--reward", "f=inproc://regex_format", "--out", str(out), "--resume"])
    assert code == 2
    assert "does not match line 1" in capsys.readouterr().err


def test_every_broken_line_is_listed_with_did_you_mean_before_anything_is_sent(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"completion": "a", "refrence": "a"}\n{"completion": "b", "answer": "b"}\n'
                   '{"completion": "c", "reference": "c", "answer": "c", "id": 3}\n[1]\n{"complet": "d"}\n')
    code = main(["score", str(src), "--reward", f"f=http://127.0.0.1:{free_port()}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "in.jsonl:1: unknown key 'refrence' (did you mean 'reference'?)" in err
    assert "in.jsonl:2: unknown key 'answer' (did you mean 'reference'?)" in err
    assert "in.jsonl:3" not in err  # beside a reference, `answer` is a note that travels through
    assert "in.jsonl:4: a line must be a JSON object" in err
    assert "unknown key 'complet' (did you mean 'completion'?)" in err and "completion: Field required" in err


def test_inproc_typo_lists_the_services_instead_of_suggesting_an_install(capsys):
    code = main(["score", str(EXAMPLE_FILE), "--reward", "f=inproc://regex"])
    assert code == 2
    err = capsys.readouterr().err
    assert "regex_format" in err and "pip install" not in err


def test_missing_input_file_is_one_line_with_exit_2(tmp_path, capsys):
    code = main(["score", str(tmp_path / "nope.jsonl"), "--reward", "f=inproc://regex_format"])
    assert code == 2
    err = capsys.readouterr().err
    assert "nope.jsonl does not exist" in err and "Traceback" not in err


def test_a_partial_file_is_never_overwritten_without_resume(tmp_path, capsys):
    out = tmp_path / "o.jsonl"
    partial_path(out).write_text('{"id": "q1"}\n')
    code = main(["score", str(EXAMPLE_FILE), "--reward", "f=inproc://regex_format", "--out", str(out)])
    assert code == 2 and "--resume" in capsys.readouterr().err
    assert partial_path(out).read_text() == '{"id": "q1"}\n'
