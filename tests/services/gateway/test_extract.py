"""Cutting the completion out of OpenRLHF's query, and reading labels (proto.labels), on literal inputs."""

from __future__ import annotations

import base64

import pytest

from proto.gateway_config import ExtractConfig, GatewayConfig, GatewayConfigError
from proto.labels import BadSample, image_entry, item_from, plain, prompt_text
from proto.models import ImageData
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

    def test_a_regex_matching_at_the_very_start_marks_the_whole_query(self):
        assert ex(response_start=[], response_regex="^").completion("the answer", None) == "the answer"

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

    @pytest.mark.parametrize(("prompt", "text"), [
        ([{"role": "user", "content": "first"}, {"role": "user", "content": "Q"},
          {"role": "assistant", "content": "A"}], "Q"),
        ([{"role": "system", "content": "s"}], None),
        ([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image"},
                                       {"type": "text", "text": None}, {"type": "text", "text": "b"}]}], "ab"),
        ([{"role": "user", "content": 5}], None),
        ("plain", "plain"),
    ])
    def test_prompt_is_the_last_user_turns_text(self, prompt, text):
        assert prompt_text(prompt) == text
        assert item_from("c", prompt, "2")[0].prompt == text

    def test_a_prompt_of_another_type_is_named(self):
        with pytest.raises(BadSample, match=r"^prompt must be a string or a list of chat messages, not int$"):
            prompt_text(5)

    def test_a_json_label_after_white_space_is_still_an_object(self):
        assert item_from("c", None, ' \n {"reference": "cat"}')[0].reference == "cat"

    def test_label_errors_name_up_to_three_fields_with_their_paths(self):
        with pytest.raises(BadSample) as info:
            item_from("c", None, {"choices": ["a", 3], "b": 1, "c": 1, "d": 1})
        assert str(info.value) == ("label object: choices.1: Input should be a valid string; "
                                   "b: Extra inputs are not permitted; c: Extra inputs are not permitted "
                                   "(keys: reference, image, choices, meta)")

    def test_a_label_of_another_type_is_named(self):
        with pytest.raises(BadSample, match=r"^label must be a string, a list or an object, not set$"):
            item_from("c", None, {"a"})

    def test_meta_and_the_samples_own_image_travel(self):
        item, images = item_from("c", None, {"reference": "2", "meta": {"answer_type": "number"}},
                                 image="imgs/a.jpg")
        assert item.meta == {"answer_type": "number"}
        assert images == {item.image_id: ImageData(path="imgs/a.jpg")}
        bare, none = item_from("c", None, "2")
        assert bare.image_id is None and none == {}


class TestImages:
    def test_an_object_is_validated_and_its_first_error_named(self):
        assert image_entry({"path": "a.jpg"})[1] == ImageData(path="a.jpg")
        with pytest.raises(BadSample, match=r"^image: Input should be a valid string$"):
            image_entry({"b64": 1, "nope": 2})

    def test_other_types_are_refused_by_name(self):
        with pytest.raises(BadSample, match=r"^image must be a path, base64 or an object, not int$"):
            image_entry(5)

    def test_a_data_uri_carries_everything_after_its_first_comma(self):
        # RFC 2397: data:[<mediatype>][;base64],<data>
        assert image_entry("data:image/png;base64,AB,CD")[1] == ImageData(b64="AB,CD")
        with pytest.raises(BadSample, match=r"^image: a data: URI needs a comma before its base64 data$"):
            image_entry("data:image/png;base64")

    def test_ids_follow_the_content_so_one_image_is_sent_once(self):
        raw = p.png_b64()
        other = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"other").decode()
        ids = [image_entry(v)[0] for v in (raw, raw, other, "a.jpg", "a.jpg", "b.jpg")]
        assert ids[0] == ids[1] != ids[2] and ids[3] == ids[4] != ids[5] and ids[0] != ids[3]
        assert all(len(i) == 32 for i in ids)  # a 128-bit prefix of the SHA-256

    def test_a_path_that_base64_would_read_only_leniently_stays_a_path(self):
        # Without its dashes this decodes to PNG's magic bytes; strict base64 refuses the dashes.
        assert image_entry("iVBO--Rw0K--.png")[1] == ImageData(path="iVBO--Rw0K--.png")


def test_config_refuses_duplicate_names_and_parts_of_unknown_rewards():
    entry = {"name": "a", "url": "http://x"}
    with pytest.raises(ValueError, match="unique"):
        GatewayConfig(rewards=[entry, entry])
    with pytest.raises(ValueError, match="log_parts names no reward"):
        GatewayConfig(rewards=[entry], log_parts={"b": ["x"]})


class TestPlain:
    """verl hands labels and reward_kwargs over as OmegaConf containers and numpy arrays."""

    def test_omegaconf_and_numpy_become_plain_python(self):
        import numpy as np
        from omegaconf import OmegaConf

        cfg = OmegaConf.create({"gateway": "http://g", "weights": {"fmt": 0.5}, "answers": ["a", "b"]})
        got = plain({"cfg": cfg, "ids": np.array([1, 2]), "n": np.int64(3), "pair": ("x", b"y")})
        assert got == {"cfg": {"gateway": "http://g", "weights": {"fmt": 0.5}, "answers": ["a", "b"]},
                       "ids": [1, 2], "n": 3, "pair": ["x", b"y"]}
        assert type(got["cfg"]) is dict and type(got["cfg"]["answers"]) is list and type(got["n"]) is int

    def test_anything_with_items_is_a_mapping_and_keys_become_strings(self):
        class Pairs:  # a mapping-like object that is no Mapping (as some config types are)
            def items(self):
                return [(1, ("v",)), ("k", "w")]

        assert plain(Pairs()) == {"1": ["v"], "k": "w"}

    def test_text_stays_text(self):
        assert plain("abc") == "abc" and plain(b"abc") == b"abc" and plain(None) is None
