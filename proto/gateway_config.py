"""The gateway's YAML config: a recipe's `rewards:` entries, plus how to read other trainers' requests.

It lives in proto/ so that `rewardstack gateway` can check a config before it starts the service.

    rewards:                       # exactly a recipe's entries (proto.rewards.RewardEntry)
      - {name: format, url: http://regex-format:8000, weight: 0.5, params: {mode: think_answer}}
      - {name: answer, url: http://vqa-accuracy:8000, params: {mode: vqa, answer_tag: answer}}
    fallback: 0.0                  # a reward that could not be scored, on routes that refuse null
    coalesce_ms: 5                 # how long concurrent single-sample requests are gathered
    max_batch: 1024                # most items in one coalesced call to a service
    log_parts: {answer: [tagged]}  # parts copied into OpenRLHF's extra_logs (fixed keys)
    extract: {...}                 # see ExtractConfig

An entry's `on_error` means here: `skip` scores the item with `fallback` and flags it unscored;
`abort` answers the whole request with 502, so the trainer's own failure handling sees it.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from proto.rewards import RewardEntry, unique_names

# The end-of-turn and end-of-text markers of the common chat templates (Qwen, Llama 3, Gemma,
# Mistral/Llama 2, GPT-2 style); OpenRLHF decodes with special tokens kept, so they trail the text.
DEFAULT_END_TOKENS = ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>",
                      "<eos>", "</s>", "<|end|>", "<|return|>"]
# Where the assistant's turn starts in the same templates: the response follows the last one.
DEFAULT_RESPONSE_START = ["<|im_start|>assistant\n", "<|start_header_id|>assistant<|end_header_id|>\n\n",
                          "<start_of_turn>model\n", "[/INST]", "<|assistant|>\n"]


class GatewayConfigError(ValueError):
    """The gateway's config file is missing or invalid; the message names the file and the field."""


class ExtractConfig(BaseModel):
    """How the completion is cut out of OpenRLHF's `query` (prompt + response, special tokens kept).

    When `query` starts with `prompts[0]` the prompt is stripped. Otherwise (a VLM's expanded image
    tokens, a left-truncated prompt) the response is what follows the last `response_start`
    marker, or the last match of `response_regex` (RE2). `end_tokens` are then removed from its end.
    """

    model_config = ConfigDict(extra="forbid")

    response_start: list[str] = Field(default_factory=lambda: list(DEFAULT_RESPONSE_START))
    response_regex: str | None = Field(
        default=None, description="RE2, compiled on start; the response follows its last match."
    )
    end_tokens: list[str] = Field(default_factory=lambda: list(DEFAULT_END_TOKENS))
    on_no_marker: str = Field(
        default="unscored", pattern="^(unscored|whole_query)$",
        description="unscored: the item gets the fallback, flagged; whole_query: score all of query.",
    )


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rewards: list[RewardEntry] = Field(min_length=1)
    fallback: float = Field(default=0.0, allow_inf_nan=False)
    coalesce_ms: float = Field(default=5.0, ge=0, le=1000)
    max_batch: int = Field(default=1024, ge=1)
    log_parts: dict[str, list[str]] = Field(default_factory=dict)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    ready_poll_s: float = Field(default=2.0, gt=0, description="How often the services' /readyz is read.")

    @model_validator(mode="after")
    def _consistent(self) -> GatewayConfig:
        unique_names(self.rewards)
        unknown = sorted(set(self.log_parts) - {r.name for r in self.rewards})
        if unknown:
            raise ValueError(f"log_parts names no reward: {unknown}")
        return self


def load_config(path: str | Path) -> GatewayConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GatewayConfigError(f"gateway config {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise GatewayConfigError(f"gateway config {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise GatewayConfigError(f"gateway config {path} must be a mapping with a 'rewards:' list")
    try:
        return GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors()]
        raise GatewayConfigError(f"gateway config {path} is invalid:\n  " + "\n  ".join(lines)) from None
