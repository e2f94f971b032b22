"""regex_format scorer: the structure of a completion in [0, 1], by one of several rules."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.scoring import Batch, ParamsError, Scored, score_each
from services.regex_format import presets, rules
from services.regex_format.settings import RegexFormatSettings


class RegexFormatParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: rules.Mode | None = Field(
        default=None,
        description="Rule; the service's default when absent. think_answer / think_answer_explain: "
        "exactly those tag blocks in order, white space around; reasoning_solution: 0.5 per "
        "<REASONING>/<SOLUTION> block; tags: your ordered 'tags'; pattern: your RE2 'pattern'. "
        "Presets that give other trainers' numbers exactly, on the raw completion: "
        "trl_think_format (TRL think_format_reward: starts with <think>, one </think> after, any "
        "text after it), openr1_format (open-r1 format_reward: '<think>\\n…\\n</think>\\n"
        "<answer>\\n…\\n</answer>' with those newlines), openr1_tag_count (open-r1 "
        "tag_count_reward: 0.25 per newline-delimited tag present exactly once).",
    )
    tags: list[str] | None = Field(default=None, description="Ordered tag names for mode 'tags'.")
    pattern: str | None = Field(default=None, description="RE2 regex for mode 'pattern'.")
    match: Literal["full", "search"] = Field(
        default="full", description="'pattern' mode: the whole stripped completion, or anywhere."
    )
    partial: bool = Field(
        default=False,
        description="Tag modes: up to 0.5 for the blocks found when the full structure is not met. "
        "The trl_/openr1_ presets ignore it: they give what their originals give.",
    )

    @model_validator(mode="after")
    def _mode_needs(self) -> RegexFormatParams:
        if self.mode == "tags":
            if not self.tags:
                raise ValueError("mode 'tags' needs a non-empty 'tags' list, e.g. ['think', 'answer']")
            bad = [t for t in self.tags if not rules.TAG_NAME.match(t)]
            if bad or len(set(self.tags)) != len(self.tags):
                raise ValueError(f"tags must be distinct names of letters, digits, '_' or '-': {self.tags}")
        if self.mode == "pattern" and not self.pattern:
            raise ValueError("mode 'pattern' needs 'pattern', an RE2 regular expression")
        return self


class RegexFormatScorer:
    name = "regex_format"
    version = "1.1.0"
    score_range = (0.0, 1.0)
    params_model = RegexFormatParams

    def __init__(self, settings: RegexFormatSettings):
        self.settings = settings

    def load(self) -> None:
        rules.compile_pattern(r"<think>.*</think>")  # imports and initialises RE2 before ready

    def close(self) -> None:
        pass

    def config(self) -> dict[str, Any]:
        return {"default_mode": self.settings.default_mode, "engine": "re2"}

    def score(self, batch: Batch) -> list[Scored]:
        judge = self._judge(batch.params)
        return score_each(batch.items, lambda item: _as_scored(judge(item.completion)))

    def _judge(self, params: RegexFormatParams):
        mode = params.mode or self.settings.default_mode
        if mode in rules.PRESET_TAGS or mode == "tags":
            tags = tuple(params.tags) if mode == "tags" else rules.PRESET_TAGS[mode]
            return lambda text: rules.strict_tags(text, tags, params.partial)
        if mode in presets.PRESETS:
            return presets.PRESETS[mode]
        if mode == "reasoning_solution":
            return rules.reasoning_solution
        if mode == "pattern":
            return self._pattern_judge(params)
        raise ParamsError(f"mode {mode!r} needs 'pattern' or 'tags'")

    def _pattern_judge(self, params: RegexFormatParams):
        pattern = params.pattern or ""
        if len(pattern) > self.settings.max_pattern_length:
            raise ParamsError(
                f"pattern is {len(pattern)} characters, over REGEX_FORMAT_MAX_PATTERN_LENGTH="
                f"{self.settings.max_pattern_length}"
            )
        try:
            rules.compile_pattern(pattern)
        except rules.PatternError as exc:
            raise ParamsError(str(exc)) from None
        return lambda text: rules.pattern_match(text, pattern, params.match)


def _as_scored(verdict: rules.Verdict) -> Scored:
    return Scored(verdict.score, parts=verdict.parts)
