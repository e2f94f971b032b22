"""Fixtures of the trainer-integration tests: the two reward services, and a tiny tokenizer (in
memory, and saved where verl's loader reads it)."""

import pytest

from tests.services.gateway.support import services


@pytest.fixture(scope="module")
def svc():
    with services() as s:
        yield s


@pytest.fixture(scope="module")
def tokenizer():
    from trainer.model.tiny_qwen import build_tokenizer

    return build_tokenizer()


@pytest.fixture(scope="module")
def tokenizer_dir(tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(path)
    return path
