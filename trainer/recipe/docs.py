"""The field reference of docs/recipes.md, generated from the recipe's pydantic models.

`python -m trainer.recipe.docs --write` rewrites the generated part of docs/recipes.md (between the
markers); `--check` exits 1 when it is stale, which tests/trainer/recipe/test_docs.py asserts never
happens. Descriptions come from each field's `description`, else from its model's docstring
(`name: text` lines, as DataConfig writes them).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from trainer.data.config import DataConfig
from trainer.recipe.schema import (
    _OWNED_GRPO_KEYS,
    LoraSection,
    ModelSection,
    OutputSection,
    ProcessorSection,
    Recipe,
    RewardEntry,
    VllmSection,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"
BEGIN, END = "<!-- BEGIN GENERATED: python -m trainer.recipe.docs --write -->", "<!-- END GENERATED -->"
SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("(top level)", Recipe), ("model", ModelSection), ("processor", ProcessorSection),
    ("lora", LoraSection), ("data", DataConfig),
    ("rewards[]", RewardEntry), ("vllm", VllmSection), ("output", OutputSection),
]


# Fields whose model gives no description (recipe.py keeps its models terse); the test asserts that
# every field ends up with one, so a new field cannot go undocumented.
NOTES = {
    "(top level).description": "Free text, copied into the run's resolved_recipe.yaml.",
    "(top level).model": "The policy model; see `model` below.",
    "(top level).processor": "Image-processor options that set how many tokens an image costs; see "
                             "`processor` below.",
    "(top level).lora": "LoRA adapter settings; `null` (or `enabled: false`) trains every weight.",
    "(top level).data": "The dataset; see `data` below and *Getting the data*.",
    "(top level).rewards": "One entry per reward service (at least one); see `rewards[]` below.",
    "(top level).grpo": "Handed to TRL's `GRPOConfig` as is; see `grpo` below.",
    "(top level).vllm": "Generation with vLLM (GPU only); see `vllm` below.",
    "(top level).output": "Where the run writes; see `output` below.",
    "(top level).resume": "`false` starts fresh (and says so if checkpoints exist), `auto` continues "
                          "from the latest checkpoint in `output.dir`, a path names a checkpoint-N folder.",
    "model.dtype": "Weights' dtype; `auto` takes the checkpoint's.",
    "model.gradient_checkpointing": "Trade compute for memory (becomes GRPOConfig's gradient_checkpointing).",
    "model.trust_remote_code": "Allow the model repository's own code (some InternVL checkpoints need it).",
    "lora.enabled": "`false` trains every weight, like `lora: null`.",
    "lora.r": "Rank of the adapter matrices.",
    "lora.alpha": "Scaling numerator: updates are scaled by alpha / r.",
    "lora.dropout": "Dropout on the adapter's input.",
    "rewards[].url": "`http(s)://host:port` of the service, or `inproc://<service>` to run it in this "
                     "process; give `url` or `urls`.",
    "rewards[].weight": "Weight of this reward in the total (GRPOConfig's reward_weights).",
    "rewards[].on_error": "A call that gets no answer during the run: `skip` leaves its items null (TRL "
                          "ignores nulls), `abort` stops the run. A service that does not answer the "
                          "preflight stops the run before the model loads, whatever this says.",
    "vllm.mode": "`none` generates with transformers; `colocate` runs vLLM inside the trainer; `server` "
                 "talks to `trl vllm-serve`.",
    "vllm.gpu_memory_utilization": "Share of GPU memory vLLM may take (colocate).",
    "vllm.tensor_parallel_size": "GPUs one vLLM engine spans.",
    "vllm.enable_sleep_mode": "Free vLLM's memory while the trainer steps (colocate).",
    "vllm.max_model_length": "vLLM's context length; None takes the model's.",
}


def docstring_fields(model: type[BaseModel]) -> dict[str, str]:
    """`name: text` entries of a Google-style docstring, continuation lines joined."""
    found: dict[str, str] = {}
    current = None
    for line in (model.__doc__ or "").splitlines():
        match = re.match(r"^\s{8}([a-z_][a-z0-9_]*(?:\s*/\s*[a-z_]+)*): (.*)$", line)
        if match:
            current = [n.strip() for n in match.group(1).split("/")]
            for name in current:
                found[name] = match.group(2).strip()
        elif current and re.match(r"^\s{12}\S", line):
            for name in current:
                found[name] += " " + line.strip()
        else:
            current = None
    return found


def _type(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation)
    for prefix in ("typing.", "pathlib.", "trainer.recipe.schema.", "trainer.data.config."):
        text = text.replace(prefix, "")
    return text.replace("|", "\\|")


def _default(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "(the section's defaults)"
    return f"`{value!r}`"


def describe(title: str, model: type[BaseModel], name: str) -> str:
    field = model.model_fields[name]
    return field.description or docstring_fields(model).get(name) or NOTES.get(f"{title}.{name}", "")


def section_table(title: str, model: type[BaseModel]) -> str:
    lines = [f"### `{title}`", "", "| field | type | default | what it does |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        text = describe(title, model, name).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{name}` | {_type(field.annotation)} | {_default(field)} | {text} |")
    return "\n".join(lines)


def generated() -> str:
    owned = "\n".join(f"| `grpo.{k}` | `{v}` |" for k, v in _OWNED_GRPO_KEYS.items())
    parts = [section_table(title, model) for title, model in SECTIONS]
    parts.append("### `grpo`\n\nEvery key is a field of TRL's `GRPOConfig` (trl 1.16), passed as is; an "
                 "unknown key is refused with the closest field names. These keys are set by other sections "
                 "and refused here:\n\n| key | set by |\n|---|---|\n" + owned)
    return "\n\n".join(parts)


def render(text: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n\n{generated()}\n\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--write", action="store_true")
    args.add_argument("--check", action="store_true")
    opts = args.parse_args(argv)
    current = DOC.read_text(encoding="utf-8")
    fresh = render(current)
    if opts.write:
        DOC.write_text(fresh, encoding="utf-8")
        return 0
    if fresh != current:
        print(f"{DOC} is stale: run python -m trainer.recipe.docs --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
