"""Evaluation on the tiny model, scored by a real regex_format service over HTTP; the completions it
scores and shows are decoded whole, without bytes that form no character."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from services.common.app import create_app
from services.regex_format import rules
from services.regex_format.scorer import RegexFormatScorer
from services.regex_format.settings import RegexFormatSettings
from tests.helpers import free_port, serve_app
from trainer.evaluate import EvalError, run_eval
from trainer.generation import decode_completions
from trainer.preflight import PreflightError
from trainer.recipe import parse_recipe

LIMIT = 5


@pytest.fixture(scope="module")
def format_url():
    settings = RegexFormatSettings()
    with serve_app(create_app(RegexFormatScorer(settings), settings)) as url:
        yield url


def _recipe(rewards: list[dict], **data):
    return parse_recipe({
        "model": {"id": "tiny://qwen2.5-vl", "dtype": "float32"},
        "data": {"source": "synthetic", "limit": 16, "image_size": 56, "seed": 1,
                 "format_instruction": "Think in <think></think>, answer in <answer></answer>.",
                 **data},
        "rewards": rewards,
        "grpo": {"per_device_train_batch_size": 4, "num_generations": 4,
                 "max_completion_length": 12},
        "output": {"dir": "unused"},
    })


def _format_rewards(url: str) -> list[dict]:
    return [
        {"name": "format", "url": url, "params": {"mode": "think_answer", "partial": True},
         "send_images": False},
        # Matches any text: every item scores exactly 1.0, so the summary is known in advance.
        {"name": "anything", "url": url, "weight": 0.5,
         "params": {"mode": "pattern", "pattern": "(?s).*"}},
    ]


def _lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]


def test_eval_writes_scored_lines_summary_and_histograms(format_url: str, tmp_path: Path) -> None:
    out = run_eval(_recipe(_format_rewards(format_url)), adapter=None, limit=LIMIT,
                   out_dir=tmp_path / "eval", batch_size=2)
    lines = _lines(out)
    assert len(lines) == LIMIT
    for line in lines:
        # The service's score is the reference rule applied to the completion the model wrote.
        expected = rules.strict_tags(line["completion"], ("think", "answer"), partial=True).score
        assert line["rewards"]["format"] == pytest.approx(expected)
        assert line["rewards"]["anything"] == 1.0
        assert line["details"]["format"]["status"] == "ok"
    summary = {row["reward"]: row for row in json.loads((out / "summary.json").read_text())}
    assert summary["anything"]["mean"] == 1.0 and summary["anything"]["nulls"] == 0
    assert summary["format"]["scored"] == LIMIT
    total = summary["total (weighted)"]["mean"]
    assert total == pytest.approx(summary["format"]["mean"] + 0.5)
    assert "| anything | 0.5000 | 1.0000 |" in (out / "summary.md").read_text()
    for name in ("format", "anything"):
        with Image.open(out / f"reward_hist_{name}.png") as image:
            assert image.format == "PNG" and image.size[0] > 0


def test_a_service_that_dies_midway_with_skip_gives_nulls_counted_in_the_summary(
        format_url: str, tmp_path: Path) -> None:
    import asyncio

    from trainer.evaluate import score_all, write_outputs

    dead = f"http://127.0.0.1:{free_port()}"
    # timeout_s the test would not wait out: the client gives up at unreachable_s, as training's does
    rewards = [*_format_rewards(format_url)[:1],
               {"name": "gone", "url": dead, "timeout_s": 5.0, "unreachable_s": 0.2, "on_error": "skip"}]
    recipe = _recipe(rewards)
    rows = [{"prompt": [{"role": "user", "content": "q"}], "question": "q", "solution": "2"}] * 3
    completions = ["<think>a</think><answer>2</answer>"] * 3
    results = asyncio.run(score_all(recipe, rows, completions))
    write_outputs(tmp_path, rows, completions, results)
    lines = _lines(tmp_path)
    assert [line["rewards"]["gone"] for line in lines] == [None, None, None]
    assert lines[0]["details"]["gone"]["status"] == "error"
    assert "unreachable for 0.2s" in lines[0]["details"]["gone"]["reason"]
    assert all(line["rewards"]["format"] == 1.0 for line in lines)
    summary = {row["reward"]: row for row in json.loads((tmp_path / "summary.json").read_text())}
    assert summary["gone"]["nulls"] == 3 and summary["gone"]["mean"] is None


def test_a_dead_service_with_abort_names_the_reward_and_url(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    recipe = _recipe([{"name": "gone", "url": dead, "timeout_s": 1.0, "on_error": "abort"}])
    # The preflight finds it before the model loads; EvalError would find it after generating.
    with pytest.raises(PreflightError, match=rf"rewards\[0\] \(gone\) at {dead}: no answer"):
        run_eval(recipe, adapter=None, limit=2, out_dir=tmp_path / "eval")


def _save_perturbed_adapter(target: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from trainer.model.tiny import tiny_model_dir

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir(), dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=64,
                                                  target_modules=["q_proj", "v_proj"]))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:  # zero at init: a fresh adapter would change nothing
                param.copy_(torch.randn(param.shape, generator=generator) * 2.0)
    peft_model.save_pretrained(target)


def test_the_adapter_is_applied(format_url: str, tmp_path: Path) -> None:
    recipe = _recipe(_format_rewards(format_url)[1:])
    base = run_eval(recipe, adapter=None, limit=4, out_dir=tmp_path / "base")
    _save_perturbed_adapter(tmp_path / "adapter")
    tuned = run_eval(recipe, adapter=tmp_path / "adapter", limit=4, out_dir=tmp_path / "tuned")
    assert [r["completion"] for r in _lines(base)] != [r["completion"] for r in _lines(tuned)]


def test_an_adapter_folder_that_is_neither_lora_nor_model_is_refused(tmp_path: Path,
                                                                    format_url: str) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvalError, match="neither a LoRA adapter"):
        run_eval(_recipe(_format_rewards(format_url)), adapter=tmp_path / "empty", limit=2,
                 out_dir=tmp_path / "eval")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from trainer.model.tiny import tiny_model_dir

    return AutoTokenizer.from_pretrained(tiny_model_dir())  # byte-level BPE: 'é' is two tokens here


@pytest.mark.parametrize("text", ["ok é", "Hà Nội", "ok 🙂"])
def test_a_character_cut_off_at_the_end_is_dropped(tokenizer, text):
    ids = tokenizer.encode(text, add_special_tokens=False)
    whole = decode_completions(tokenizer, [ids])
    assert whole == [text]
    cut = [ids[:n] for n in range(1, len(ids) + 1)]
    decoded = decode_completions(tokenizer, cut)
    assert all("\ufffd" not in d for d in decoded), decoded
    assert all(text.startswith(d) for d in decoded)
    assert decoded[-1] == text


def test_padding_and_special_tokens_are_not_text(tokenizer):
    ids = tokenizer.encode("ok é", add_special_tokens=False)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    assert decode_completions(tokenizer, [[*ids[:-1], pad, pad]]) == ["ok "]


def test_bytes_that_never_form_a_character_are_left_out_and_the_rest_decoded_whole(tokenizer):
    # What the demo's random policy writes: a lone lead byte before plain text, twice.
    e_acute = tokenizer.encode("é", add_special_tokens=False)
    assert len(e_acute) == 2 and tokenizer.decode(e_acute[:1]) == "\ufffd"
    lead = e_acute[:1]
    ids = (tokenizer.encode("<answer>1", add_special_tokens=False) + lead
           + tokenizer.encode(" ok é", add_special_tokens=False) + lead + lead
           + tokenizer.encode("x", add_special_tokens=False) + lead)
    assert "\ufffd" in tokenizer.decode(ids)
    assert decode_completions(tokenizer, [ids]) == ["<answer>1 ok éx"]
