"""Cutting the completion out of OpenRLHF's query, and reading labels (proto.labels), on literal inputs."""

from __future__ import annotations

import pytest

from proto.gateway_config import ExtractConfig, GatewayConfig, GatewayConfigError
from proto.labels import BadSample, item_from, prompt_text
from services.gateway.extract import Extractor
from tests.services.gateway import payloads as p


def ex(**kw) -> Extractor:
    return Extractor(ExtractConfig(**kw))


class TestCompletion:
    def test_prompt_prefix_is_stripped(self):
        assert ex().completion(p.TEXT_PROMPT + "ok<|im_end|>", p.TEXT_PROMPT) == "ok"

    def test_last_marker_wins_when_the_query_does_not_start_with_the_prompt(self):
        query = p.VLM_QUERY_PROMPT + "<answer>2</answer><|im_end|><|endoftext|>"
        assert ex().completion(query, p.VLM_PROMPT) == "<answer>2</answer>"

    def test_a_marker_inside_the_response_is_not_mistaken_for_the_start(self):
        # rfind: the *last* assistant marker; a response quoting the template still loses only its head
        query = p.VLM_QUERY_PROMPT + "say <|im_start|>assistant\nhi"
        assert ex().completion(query, None) == "hi"

    def test_gemma_template_markers(self):
        query = "<bos><start_of_turn>user\n<image>Q<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n<eos>"
        assert ex().completion(query, "something else") == "A"

    def test_regex_marker(self):
        e = ex(response_start=[], response_regex=r"ASSISTANT:\s*")
        assert e.completion("USER: q ASSISTANT:  the answer</s>", None) == "the answer"

    def test_no_marker_is_none_or_the_whole_query(self):
        assert ex().completion("plain text", "other") is None
        assert ex(on_no_marker="whole_query").completion("plain text<|im_end|>", "other") == "plain text"

    def test_end_tokens_repeated_with_whitespace_are_all_removed(self):
        assert ex().strip_end("done<|im_end|>\n<|endoftext|><|endoftext|>  ") == "done"
        assert ex().strip_end("<|im_end|> kept in the middle") == "<|im_end|> kept in the middle"

    def test_a_regex_re2_refuses_is_a_config_error(self):
        with pytest.raises(GatewayConfigError, match="RE2"):
            Extractor(ExtractConfig(response_regex=r"(a)\1"))


class TestLabels:
    def test_plain_string_and_list_are_references(self):
        assert item_from("c", None, "2")[0].reference == "2"
        assert item_from("c", None, ["2", "two"])[0].reference == ["2", "two"]
        assert item_from("c", None, 7)[0].reference == "7"

    def test_json_text_object_with_path_image(self):
        item, images = item_from("c", "q", '{"reference": "cat", "image": "imgs/cat.jpg", "choices": ["cat", "dog"]}')
        assert item.reference == "cat" and item.choices == ["cat", "dog"]
        assert images[item.image_id].path == "imgs/cat.jpg"

    def test_data_uri_and_raw_base64_give_the_same_image(self):
        raw = p.png_b64()
        a = item_from("c", None, {"image": raw})
        b = item_from("c", None, {"image": "data:image/png;base64," + raw})
        assert a[0].image_id == b[0].image_id and a[1][a[0].image_id].b64 == raw

    def test_a_text_that_only_looks_like_json_stays_a_reference(self):
        assert item_from("c", None, "{not json")[0].reference == "{not json"

    def test_unknown_key_is_named(self):
        with pytest.raises(BadSample, match="refrence"):
            item_from("c", None, {"refrence": "2"})

    def test_prompt_from_chat_messages(self):
        msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "Q?"}]}]
        assert prompt_text(msgs) == "Q?"


def test_config_refuses_duplicate_names_and_parts_of_unknown_rewards():
    entry = {"name": "a", "url": "http://x"}
    with pytest.raises(ValueError, match="unique"):
        GatewayConfig(rewards=[entry, entry])
    with pytest.raises(ValueError, match="log_parts names no reward"):
        GatewayConfig(rewards=[entry], log_parts={"b": ["x"]})
