"""Fixtures of the clip_cider tests: one tiny random CLIP config per session."""

import pytest

from tests.services.clip_cider.support import write_tiny_config


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory):
    return write_tiny_config(tmp_path_factory.mktemp("clip_configs"))
