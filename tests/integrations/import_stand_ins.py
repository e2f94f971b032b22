"""Import stand-ins, not fakes of behaviour: modules that a released trainer's code imports at module
level on a path the tests run but never calls into, and that cannot be installed here.

`vllm()`: OpenRLHF's samples_generator (where a rollout's answer becomes an Experience)
imports `vllm.SamplingParams`, and its `openrlhf.trainer.ray` package imports vllm_engine, which
imports `vllm.inputs.TokensPrompt` and `vllm.utils.random_uuid`. vLLM needs a GPU build. The stand-in
is in sys.modules only while those modules are imported, and only when no real vLLM is importable
(other code that asks whether vLLM is installed must not see it); its SamplingParams only holds the
settings that OpenRLHF's single-turn executor reads (`max_tokens`, `logprobs`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types
import uuid
from collections.abc import Iterator


class SamplingParams:
    """The fields of vllm.SamplingParams that OpenRLHF's executor reads and copies."""

    def __init__(self, max_tokens: int | None = None, logprobs: int | None = None, **others):
        self.max_tokens, self.logprobs = max_tokens, logprobs
        self.__dict__.update(others)


@contextlib.contextmanager
def vllm() -> Iterator[None]:
    """Import what needs `vllm` inside this block."""
    if "vllm" in sys.modules or importlib.util.find_spec("vllm") is not None:
        yield
        return
    module = types.ModuleType("vllm")
    module.__version__ = "0.0.0+rewardstack-import-stand-in"
    module.SamplingParams = SamplingParams
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = dict
    utils = types.ModuleType("vllm.utils")
    utils.random_uuid = lambda: uuid.uuid4().hex
    module.inputs, module.utils = inputs, utils
    stand_ins = {"vllm": module, "vllm.inputs": inputs, "vllm.utils": utils}
    sys.modules.update(stand_ins)
    try:
        yield
    finally:
        for name in stand_ins:
            del sys.modules[name]
