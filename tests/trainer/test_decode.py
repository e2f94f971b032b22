"""Completions are decoded whole, and a character cut off by max_new_tokens is dropped, not shown as U+FFFD."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from trainer.generation import decode_completions
from trainer.model.tiny import tiny_model_dir


@pytest.fixture(scope="module")
def tokenizer():
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
