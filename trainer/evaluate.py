"""`rewardstack eval`: generate on the recipe's eval data, score through its services, write the results.

Outputs under `out_dir`: eval.jsonl (one line per example: question, solution, completion, each
reward with its status and reason), summary.md and summary.json (mean, spread and nulls per
reward, plus the weighted total TRL would have used), and reward_hist_<name>.png per reward.
A service that gets no answer follows its recipe entry: `skip` leaves its items null (and says
so in the summary), `abort` stops the evaluation with an error naming the reward and URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integrations.trl_items import build_items
from proto.client import RewardRequestError, RewardServiceError
from trainer.recipe import Recipe, RewardEntry

log = logging.getLogger(__name__)

SCORE_CHUNK = 64  # items per score call: keeps each call well inside its deadline


class EvalError(RuntimeError):
    """Evaluation cannot go on; the message names the reward, the URL or the setting to fix."""


@dataclass
class RewardResults:
    entry: RewardEntry
    rewards: list[float | None] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    failed_calls: int = 0


def eval_data(recipe: Recipe, limit: int | None):
    """The evaluation rows: `eval_split` / `eval_path` when the recipe names them."""
    from trainer.data import build_dataset

    update: dict[str, Any] = {"limit": limit or recipe.data.limit}
    if recipe.data.eval_path is not None:
        update["path"] = recipe.data.eval_path
    cfg = recipe.data.model_copy(update=update)
    dataset, summary = build_dataset(cfg, split=recipe.data.eval_split or recipe.data.split)
    return [dataset[i] for i in range(dataset.num_rows)], summary


def load_for_eval(recipe: Recipe, adapter: Path | None):
    """Model and processor with the adapter applied; a LoRA-less run's folder is the model itself."""
    import torch

    from trainer.model.loading import load_model, load_processor

    section = recipe.model.model_copy(update={"gradient_checkpointing": False})
    lora_dir = None
    if adapter is not None:
        adapter = Path(adapter)
        if (adapter / "adapter_config.json").is_file():
            lora_dir = adapter
        elif (adapter / "config.json").is_file():
            section = section.model_copy(update={"id": str(adapter)})
        else:
            raise EvalError(f"--adapter {adapter}: neither a LoRA adapter (adapter_config.json) nor "
                            "a saved model (config.json); pass the run's adapter/ folder")
    model = load_model(section)
    has_processor = adapter is not None and any(
        (adapter / name).is_file()
        for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json")
    )
    processor = load_processor(section, str(adapter) if has_processor else None, options=recipe.processor)
    if lora_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(lora_dir))
    if torch.cuda.is_available() and not section.load_in_4bit:
        model = model.to("cuda")
    return model, processor, section, lora_dir


def generate(recipe: Recipe, rows: list[dict[str, Any]], adapter: Path | None, *,
             batch_size: int, max_new_tokens: int, backend: str) -> list[str]:
    from trainer import generation
    from trainer.model.loading import load_processor, resolve_model_id

    use_vllm = backend == "vllm" or (backend == "auto" and generation.vllm_usable())
    if not use_vllm:
        model, processor, _, _ = load_for_eval(recipe, adapter)
        return generation.generate_transformers(model, processor, rows,
                                                max_new_tokens=max_new_tokens,
                                                batch_size=batch_size)
    lora_dir = adapter if adapter and (Path(adapter) / "adapter_config.json").is_file() else None
    model_id = str(adapter) if adapter and lora_dir is None else resolve_model_id(recipe.model.id)
    return generation.generate_vllm(
        model_id, load_processor(recipe.model, model_id if lora_dir is None else None), rows,
        max_new_tokens=max_new_tokens, lora_dir=lora_dir,
        lora_rank=recipe.lora.r if recipe.lora else 64,
        max_model_len=recipe.vllm.max_model_length,
        dtype=recipe.model.dtype,
    )


async def _score_entry(entry: RewardEntry, rows: list[dict[str, Any]],
                       completions: list[str]) -> RewardResults:
    result = RewardResults(entry)
    async with entry.client() as client:
        for start in range(0, len(rows), SCORE_CHUNK):
            chunk = rows[start:start + SCORE_CHUNK]
            columns = {key: [row[key] for row in chunk] for key in chunk[0] if key != "prompt"}
            items, images = build_items([row["prompt"] for row in chunk],
                                        completions[start:start + SCORE_CHUNK], columns,
                                        reference=entry.reference, send_images=entry.send_images,
                                        image_root=entry.image_root)
            try:
                response = await client.score(items, images=images, params=entry.params)
            except RewardServiceError as exc:
                _record_failure(result, exc, len(items))
                continue
            except RewardRequestError as exc:  # asking again cannot succeed, whatever the policy
                raise EvalError(entry.failure(exc)) from exc
            result.rewards.extend(response.rewards)
            result.details.extend(d.model_dump(mode="json") for d in response.details)
    return result


def _record_failure(result: RewardResults, exc: RewardServiceError, count: int) -> None:
    entry = result.entry
    if entry.on_error == "abort":
        raise EvalError(f"{entry.failure(exc)} (on_error: abort)") from exc
    log.warning("%s; %d items left null (on_error: skip)", entry.failure(exc), count)
    result.failed_calls += 1
    result.rewards.extend([None] * count)
    result.details.extend([{"status": "error", "reason": f"no answer: {exc.cause}"}] * count)


async def score_all(recipe: Recipe, rows: list[dict[str, Any]],
                    completions: list[str]) -> list[RewardResults]:
    """Every reward of the recipe over every completion, the services called concurrently.

    A refused request (bad params, bad token) is an EvalError whatever the policy: asking again
    cannot succeed. Clients are built as training builds them (`RewardEntry.client()`), so a
    service that refuses connections is given up after its entry's unreachable_s, not timeout_s.
    """
    return list(await asyncio.gather(*(_score_entry(e, rows, completions)
                                       for e in recipe.rewards)))


def weighted_totals(results: list[RewardResults]) -> list[float | None]:
    """TRL's per-completion total: the weighted sum over the rewards that are not null."""
    totals: list[float | None] = []
    for values in zip(*(r.rewards for r in results), strict=True):
        scored = [(r.entry.weight, v) for r, v in zip(results, values, strict=True) if v is not None]
        totals.append(sum(w * v for w, v in scored) if scored else None)
    return totals


def summarize(name: str, weight: float | None, values: list[float | None]) -> dict[str, Any]:
    scored = [v for v in values if v is not None and math.isfinite(v)]
    return {
        "reward": name, "weight": weight, "n": len(values), "scored": len(scored),
        "nulls": len(values) - len(scored),
        "mean": statistics.fmean(scored) if scored else None,
        "std": statistics.pstdev(scored) if len(scored) > 1 else (0.0 if scored else None),
        "min": min(scored) if scored else None, "max": max(scored) if scored else None,
    }


def summary_markdown(summary: list[dict[str, Any]]) -> str:
    columns = ["reward", "weight", "mean", "std", "min", "max", "scored", "nulls"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in summary:
        cells = [f"{v:.4f}" if isinstance(v, float) else ("—" if v is None else str(v))
                 for v in (row[c] for c in columns)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(out_dir: Path, rows: list[dict[str, Any]], completions: list[str],
                  results: list[RewardResults]) -> list[dict[str, Any]]:
    from trainer.feedback.plots import plot_histograms

    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "eval.jsonl").open("w", encoding="utf-8") as handle:
        for i, (row, completion) in enumerate(zip(rows, completions, strict=True)):
            record = {"index": i, "question": row["question"], "solution": row["solution"],
                      "completion": completion,
                      "rewards": {r.entry.name: r.rewards[i] for r in results},
                      "details": {r.entry.name: r.details[i] for r in results}}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    summary = [summarize(r.entry.name, r.entry.weight, r.rewards) for r in results]
    summary.append(summarize("total (weighted)", None, weighted_totals(results)))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (out_dir / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    plot_histograms({r.entry.name: r.rewards for r in results}, out_dir)
    return summary


def run_eval(recipe: Recipe, adapter: Path | None, limit: int | None, out_dir: Path, *,
             batch_size: int = 8, max_new_tokens: int | None = None,
             backend: str = "auto") -> Path:
    """Generate, score and write eval.jsonl, summary.{md,json} and histograms; returns `out_dir`.

    `backend`: "auto" (vLLM when installed with a GPU), "vllm" or "transformers". Decoding is
    greedy; `max_new_tokens` defaults to the recipe's `grpo.max_completion_length` (else 256).
    """
    if backend not in ("auto", "vllm", "transformers"):
        raise EvalError(f"backend {backend!r}: choose auto, vllm or transformers")
    from trainer import generation
    from trainer.preflight import preflight_eval
    from trainer.preflight_tokens import check_token_budget

    out_dir = Path(out_dir)
    # Wrong params, paths or tokens fail here, before the model loads.
    rows, data_summary = preflight_eval(recipe, lambda: eval_data(recipe, limit))
    log.info("evaluating %d examples (%s)", len(rows), data_summary)
    max_new = max_new_tokens or int(recipe.grpo.get("max_completion_length", 256))
    use_vllm = backend == "vllm" or (backend == "auto" and generation.vllm_usable())
    check_token_budget(recipe, rows, max_new_tokens=max_new, use_vllm=use_vllm)
    completions = generate(recipe, rows, adapter, batch_size=batch_size, max_new_tokens=max_new,
                           backend=backend)
    results = asyncio.run(score_all(recipe, rows, completions))
    summary = write_outputs(out_dir, rows, completions, results)
    log.info("evaluation summary (%s):\n%s", out_dir, summary_markdown(summary))
    return out_dir
