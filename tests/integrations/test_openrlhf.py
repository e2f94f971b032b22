"""OpenRLHF 0.11's own rollout code against the gateway: its dataset builds the prompt and label, its
single-turn agent executor fetches the reward over HTTP, and its samples generator and Experience
turn the answers into a training batch, concatenated and split again.

Only vLLM's engine is stood in for (it needs a GPU): it answers each prompt with a fixed response.
openrlhf/utils/agent.py `SingleTurnAgentExecutor._fetch_rewards_via_http` posts
`{"query", "prompts", "labels"}` with aiohttp and reads `rewards`, `scores` and `extra_logs`;
openrlhf/trainer/ppo_utils/samples_generator.py `_process_response_into_experience` turns each
extra_logs value into a tensor, so every answer must carry the same keys and no null.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import torch
from openrlhf.datasets.prompts_dataset import preprocess_data
from openrlhf.trainer.ppo_utils.experience import Experience, split_experience_batch
from openrlhf.utils.agent import SingleTurnAgentExecutor

from tests.helpers import free_port
from tests.integrations import import_stand_ins
from tests.services.gateway.support import gateway, rewards

with import_stand_ins.vllm():
    from openrlhf.trainer.ppo_utils.samples_generator import SamplesGenerator

GOOD = "<think>two circles</think><answer>2</answer>"
FALLBACK = -1.0


class StandInEngine:
    """vLLM's engine as the executor calls it (`await generate(ids, params)`): one fixed response."""

    def __init__(self, tokenizer, response: str):
        self.ids = tokenizer(response + "<|im_end|>", add_special_tokens=False)["input_ids"]
        self.text = response

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        out = SimpleNamespace(token_ids=self.ids, text=self.text, finish_reason="stop", logprobs=None)
        return SimpleNamespace(outputs=[out])


@pytest.fixture(scope="module")
def chat_tokenizer(tokenizer):
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    tokenizer.chat_template = qwen2_5_vl_chat_template
    return tokenizer


def rollout(url: str, tokenizer, rows: list[tuple[dict, str | None, str]]) -> list[dict]:
    """Each (dataset row, label_key, response) through OpenRLHF's dataset and executor, concurrently."""
    executor = SingleTurnAgentExecutor(remote_rm_url=url + "/openrlhf/get_reward")

    async def one(row, label_key, response):
        prompt, label = preprocess_data(row, input_key="question", label_key=label_key,
                                        apply_chat_template=tokenizer.apply_chat_template)
        return await executor.execute(prompt, label, import_stand_ins.SamplingParams(), 512, tokenizer,
                                      StandInEngine(tokenizer, response))

    async def all_of_them():
        return await asyncio.gather(*(one(*r) for r in rows))

    return asyncio.run(all_of_them())


def experiences(outputs: list[dict], tokenizer) -> list[Experience]:
    """OpenRLHF's own batching of the answers: one Experience each, concatenated, split again."""
    generator = SamplesGenerator.__new__(SamplesGenerator)  # the method reads nothing of the generator
    singles = [generator._process_response_into_experience(out, max_len=512) for out in outputs]
    return split_experience_batch(Experience.concat_experiences(singles, tokenizer.pad_token_id))


def test_rewards_reach_the_batch_with_the_same_keys_for_scored_blank_and_failed_samples(svc, chat_tokenizer):
    question = {"question": "How many circles? Answer in <answer></answer>.", "answer": "2"}
    rows = [(question, "answer", GOOD), (question, "answer", "<think>three</think><answer>3</answer>"),
            (question, None, GOOD)]  # no --label_key: OpenRLHF sends "" as the label
    with gateway(rewards(svc), fallback=FALLBACK) as (url, _):
        outputs = rollout(url, chat_tokenizer, rows)
    assert [o["label"] for o in outputs] == ["2", "2", ""]
    assert [o["reward"] for o in outputs] == [[1.5], [0.5], [0.5 + FALLBACK]]
    items = experiences(outputs, chat_tokenizer)
    assert [round(float(e.rewards.sum()), 6) for e in items] == [1.5, 0.5, 0.5 + FALLBACK]
    assert [float(e.info["unscored"].sum()) for e in items] == [0.0, 0.0, 1.0]
    assert [float(e.info["answer"].sum()) for e in items] == [1.0, 0.0, FALLBACK]
    assert all(set(e.info) == set(items[0].info) for e in items)


def test_a_dead_service_gives_the_fallback_and_the_batch_still_assembles(svc, chat_tokenizer):
    dead = f"http://127.0.0.1:{free_port()}"
    row = {"question": "How many circles?", "answer": "2"}
    with gateway(rewards(svc, answer={"url": dead, "unreachable_s": 0.3}), fallback=FALLBACK) as (url, _):
        outputs = rollout(url, chat_tokenizer, [(row, "answer", GOOD)] * 4)
    items = experiences(outputs, chat_tokenizer)
    assert all(torch.equal(e.info["unscored"], items[0].info["unscored"]) for e in items)
    assert [round(float(e.rewards.sum()), 6) for e in items] == [0.5 + FALLBACK] * 4
