"""Request bodies exactly as OpenRLHF and slime build them (read from their code, not invented).

OpenRLHF, openrlhf/utils/agent.py @ 04655bc3f38cd33109101fb948673aef3db37a9c:
    `SingleTurnAgentExecutor.execute` decodes prompt + response token ids with
    `skip_special_tokens=False` into `query`, then `_fetch_rewards_via_http([query], [prompt], [label])`
    splits the lists over the comma-separated reward URLs (`batch_size = ceil(n / num_servers)`), so
    with one sample and two URLs the second gets `{"query": [], "prompts": [], "labels": []}` (0.11.2
    no longer sends that empty shard; older releases do). It reads `rewards`, `scores` and
    `extra_logs` of the answer. tests/integrations/test_openrlhf.py runs 0.11.2's own executor.
OpenRLHF VLM prompts, openrlhf/utils/vlm_utils.py @ 27657471ff158506ffd847fc03004a56747cf1e3:
    `process_prompt_with_images` tokenises the prompt with the processor, which expands each
    `<|image_pad|>` into one token per merged patch, so the decoded `query` carries N pads while
    `prompts[0]` (the dataset's templated text) carries one.
slime, slime/rollout/rm_hub/__init__.py @ 0b420f1ef4161f02d2a00d47c1318eec955a4e2e:
    `remote_rm` posts `{"prompt": sample.prompt, "response": sample.response, "label": sample.label}`
    and returns the JSON answer as the reward.
The chat template is Qwen2.5-VL's (the tiny model's, trainer/model/tiny.py).
"""

from __future__ import annotations

import base64
import io
import json

from PIL import Image

SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
QUESTION = "How many circles are there? Answer in <answer></answer>."
RESPONSE = "<think>I count two circles.</think><answer>2</answer>"

TEXT_PROMPT = f"{SYSTEM}<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
VLM_PROMPT = (f"{SYSTEM}<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{QUESTION}<|im_end|>\n"
              "<|im_start|>assistant\n")
# 112×112 pixels = 16 merged patches: the processor's expansion of the single pad above.
VLM_QUERY_PROMPT = VLM_PROMPT.replace("<|image_pad|>", "<|image_pad|>" * 16)


def openrlhf_single(prompt: str = TEXT_PROMPT, query_prompt: str | None = None,
                    response: str = RESPONSE, label=None) -> dict:
    """One sample, as `_fetch_rewards_via_http` sends it to the first (or only) URL."""
    query = (query_prompt or prompt) + response + "<|im_end|>"
    return {"query": [query], "prompts": [prompt], "labels": ["2" if label is None else label]}


OPENRLHF_EMPTY_SHARD = {"query": [], "prompts": [], "labels": []}


def png_b64(colour: str = "red", size: int = 16) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def json_label(image_b64: str) -> str:
    """A label column holding a JSON object as text (datasets store it so next to plain answers)."""
    return json.dumps({"reference": ["2", "two"], "image": image_b64, "meta": {"answer_type": "integer"}})


def slime_single(response: str = RESPONSE, label="2", prompt=QUESTION) -> dict:
    return {"prompt": prompt, "response": response, "label": label}
