"""The training recipe: one YAML file, validated by pydantic, with `--set a.b=value` overrides.

Sections:

> model
    id, dtype, attn_implementation, load_in_4bit, gradient_checkpointing, freeze_vision
> processor
    image-processor options that decide how many tokens an image costs: min_pixels / max_pixels
    (Qwen2.5-VL), longest_edge / do_image_splitting (SmolVLM2), max_patches (InternVL3); resizing
    the images themselves is `data.image_size`
> lora
    enabled, r, alpha, dropout, target_modules, language_only (default true: never the vision
    tower); `lora: null` (or `enabled: false`) trains every weight
> data
    the dataset, validated by `trainer.data.config.DataConfig`
> rewards
    one entry per reward service (`proto.rewards.RewardEntry`, shared with the gateway): name,
    url or urls, weight, params, timeout_s, unreachable_s, on_error, max_failed_fraction, window,
    token_env, reference, send_images, image_root
> grpo
    handed to TRL's `GRPOConfig` as is; unknown keys are refused by name
> vllm
    mode none|colocate|server and its settings (they become GRPOConfig's `use_vllm`, `vllm_*`)
> output, resume
    where the run writes; `resume: false | auto | PATH`

Like TRL's `__post_init__`, bad combinations fail here, before a model is loaded, with a
message that names the fields and the fix.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from proto.rewards import RewardEntry
from trainer.data.config import DataConfig
from trainer.recipe.loading import RecipeError, apply_override, error_message, yaml_load

__all__ = ["Recipe", "RecipeError", "RewardEntry", "load_recipe", "parse_recipe", "yaml_load"]

# Keys of GRPOConfig the recipe sets from its other sections; a `grpo:` value for them would be
# silently overwritten, so it is refused with a pointer to the section that owns it.
_OWNED_GRPO_KEYS = {
    "output_dir": "output.dir",
    "reward_weights": "rewards[].weight",
    "resume_from_checkpoint": "resume",
    "use_vllm": "vllm.mode",
    "vllm_mode": "vllm.mode",
    "vllm_server_base_url": "vllm.server_url",
    "vllm_gpu_memory_utilization": "vllm.gpu_memory_utilization",
    "vllm_tensor_parallel_size": "vllm.tensor_parallel_size",
    "vllm_enable_sleep_mode": "vllm.enable_sleep_mode",
    "vllm_max_model_length": "vllm.max_model_length",
    "gradient_checkpointing": "model.gradient_checkpointing",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSection(_Section):
    id: str = Field(description="Hub id or local directory of an image-text-to-text model.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    attn_implementation: str | None = Field(
        default=None, description="e.g. sdpa, eager, flash_attention_2; None lets transformers pick."
    )
    load_in_4bit: bool = Field(default=False, description="bitsandbytes NF4; needs a CUDA GPU.")
    gradient_checkpointing: bool = False
    freeze_vision: bool = Field(default=False, description="Keep the vision tower's weights fixed.")
    trust_remote_code: bool = False


class LoraSection(_Section):
    enabled: bool = True
    r: int = Field(default=8, gt=0)
    alpha: int = Field(default=16, gt=0)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | str = Field(
        default="all-linear", description="Module names or a regex; 'all-linear' for every linear layer."
    )
    # On by default: SigLIP and Qwen's ViT reuse q_proj/k_proj/v_proj/gate_proj names, so a bare name
    # list would also adapt the vision tower.
    language_only: bool = Field(
        default=True, description="Adapt the language model only, never modules of the vision tower."
    )


class ProcessorSection(_Section):
    """Options set on the image processor when it loads (training, eval, the token preflight).

    Each applies to the families whose image processor has it; any other is refused by name.
    vLLM builds its own processor from the checkpoint's defaults; the preflight checks both.
    """

    min_pixels: int | None = Field(default=None, gt=0, description="Qwen2.5-VL: least image area")
    max_pixels: int | None = Field(default=None, gt=0, description="Qwen2.5-VL: largest image area.")
    longest_edge: int | None = Field(default=None, gt=0, description="SmolVLM2: longest edge before tiling.")
    do_image_splitting: bool | None = Field(default=None, description="SmolVLM2: tiles + a global view")
    max_patches: int | None = Field(default=None, gt=0, description="InternVL3: most tiles (+ thumbnail)")

    @model_validator(mode="after")
    def _pixel_range(self) -> ProcessorSection:
        if self.min_pixels and self.max_pixels and self.min_pixels > self.max_pixels:
            raise ValueError(f"processor.min_pixels ({self.min_pixels}) is above processor.max_pixels "
                             f"({self.max_pixels})")
        return self

    def options(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class VllmSection(_Section):
    mode: Literal["none", "colocate", "server"] = "none"
    server_url: str | None = Field(default=None, description="Base URL of `trl vllm-serve` (mode: server).")
    gpu_memory_utilization: float = Field(default=0.3, gt=0.0, le=1.0)
    tensor_parallel_size: int = Field(default=1, gt=0)
    enable_sleep_mode: bool = False
    max_model_length: int | None = None

    @model_validator(mode="after")
    def _server_needs_url(self) -> VllmSection:
        if self.mode == "server" and not self.server_url:
            raise ValueError("vllm.mode is 'server' but vllm.server_url is not set")
        return self

    def grpo_kwargs(self) -> dict[str, Any]:
        if self.mode == "none":
            return {"use_vllm": False}
        kw: dict[str, Any] = {
            "use_vllm": True,
            "vllm_mode": self.mode,
            "vllm_gpu_memory_utilization": self.gpu_memory_utilization,
            "vllm_tensor_parallel_size": self.tensor_parallel_size,
            "vllm_enable_sleep_mode": self.enable_sleep_mode,
            "vllm_max_model_length": self.max_model_length,
        }
        if self.server_url:
            kw["vllm_server_base_url"] = self.server_url
        return kw


class OutputSection(_Section):
    dir: Path = Field(description="Checkpoints, adapter/, metrics.jsonl, resolved_recipe.yaml.")


class Recipe(_Section):
    description: str = ""
    model: ModelSection
    processor: ProcessorSection = Field(default_factory=ProcessorSection)
    lora: LoraSection | None = Field(default_factory=LoraSection)
    data: DataConfig
    rewards: list[RewardEntry] = Field(min_length=1)
    grpo: dict[str, Any] = Field(default_factory=dict)
    vllm: VllmSection = Field(default_factory=VllmSection)
    output: OutputSection
    resume: Literal[False, "auto"] | Path = False

    @field_validator("resume", mode="before")
    @classmethod
    def _resume_spelling(cls, v: Any) -> Any:
        if v is True:
            raise ValueError(
                "resume: true is ambiguous; write 'auto' (latest checkpoint) or a checkpoint path"
            )
        return v

    @field_validator("grpo")
    @classmethod
    def _grpo_keys(cls, grpo: dict[str, Any]) -> dict[str, Any]:
        for key in grpo:
            if key in _OWNED_GRPO_KEYS:
                raise ValueError(f"grpo.{key} is set by the recipe's {_OWNED_GRPO_KEYS[key]}; set it there")
            if key not in grpo_config_fields():
                close = _close_matches(key)
                raise ValueError(f"grpo.{key} is not a GRPOConfig field{close}")
        return grpo

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        names = [r.name for r in self.rewards]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"reward names must be unique; repeated: {dupes}")
        _check_batch(self.grpo)
        if self.lora is not None and self.lora.enabled is False:
            self.lora = None
        return self

    @property
    def lora_enabled(self) -> bool:
        return self.lora is not None

    def grpo_kwargs(self) -> dict[str, Any]:
        """Everything GRPOConfig receives: the grpo section plus what the other sections decide."""
        kw = dict(self.grpo)
        kw.update(self.vllm.grpo_kwargs())
        kw["output_dir"] = str(self.output.dir)
        kw["reward_weights"] = [r.weight for r in self.rewards]
        kw["gradient_checkpointing"] = self.model.gradient_checkpointing
        return kw

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def _check_batch(grpo: dict[str, Any]) -> None:
    g = grpo.get("num_generations", 8)
    if not isinstance(g, int) or g < 2:
        raise ValueError(f"grpo.num_generations must be an integer >= 2 (got {g!r}): GRPO compares a group")
    if grpo.get("generation_batch_size") is not None:
        size, what = grpo["generation_batch_size"], "grpo.generation_batch_size"
    else:
        bs = grpo.get("per_device_train_batch_size", 8)
        per = "steps_per_generation" if grpo.get("steps_per_generation") else "gradient_accumulation_steps"
        steps = grpo.get(per, 1)
        size = bs * steps
        what = f"grpo.per_device_train_batch_size ({bs}) × grpo.{per} ({steps})"
    if size % g:
        raise ValueError(
            f"{what} = {size} must be a multiple of grpo.num_generations ({g}), so that every prompt's "
            "group of completions lands in one generation batch; change one of them"
        )


@functools.cache
def grpo_config_fields() -> frozenset[str]:
    from trl import GRPOConfig  # deferred: importing trl costs seconds, a recipe check should not

    return frozenset(f.name for f in dataclasses.fields(GRPOConfig))


def _close_matches(key: str) -> str:
    import difflib

    near = difflib.get_close_matches(key, sorted(grpo_config_fields()), n=3)
    return f" (did you mean {', '.join(near)}?)" if near else " (see trl.GRPOConfig for the list)"


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a recipe, apply `a.b=value` overrides (values parsed as YAML) and validate it."""
    path = Path(path)
    try:
        raw = yaml_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"recipe {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"recipe {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise RecipeError(f"recipe {path} must be a mapping of sections (model, data, rewards, ...)")
    for item in overrides or []:
        apply_override(raw, item, path)
    return parse_recipe(raw, source=str(path))


def parse_recipe(raw: dict[str, Any], source: str = "<recipe>") -> Recipe:
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{_loc(e['loc'])}: {error_message(e, Recipe)}" for e in exc.errors()]
        raise RecipeError(f"recipe {source} is invalid:\n  " + "\n  ".join(lines)) from None


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"
