"""Generation for evaluation: vLLM when it is installed and a GPU is there, else batched `generate`."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

log = logging.getLogger(__name__)


def vllm_usable() -> bool:
    import torch

    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


def conversation(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The row's prompt with its image in the placeholder, exactly as GRPOTrainer prepares it."""
    from trl.data_utils import prepare_multimodal_messages

    return prepare_multimodal_messages(row["prompt"], images=[row["image"]])


def _batches(rows: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def _progress() -> Progress:
    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]generating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )


def generate_transformers(
    model: Any, processor: Any, rows: Sequence[dict[str, Any]], *,
    max_new_tokens: int, batch_size: int = 8,
) -> list[str]:
    """Greedy completions, `batch_size` prompts at a time (left-padded), with a progress bar."""
    import torch

    from trainer.model.loading import chat_processor_kwargs

    tokenizer = getattr(processor, "tokenizer", processor)
    model.eval()
    completions: list[str] = []
    with _progress() as progress:
        task = progress.add_task("generate", total=len(rows))
        for batch in _batches(rows, batch_size):
            inputs = processor.apply_chat_template(
                [conversation(row) for row in batch], add_generation_prompt=True, tokenize=True,
                return_dict=True, return_tensors="pt",
                processor_kwargs=chat_processor_kwargs(processor, padding=True),
            ).to(model.device)
            with torch.inference_mode():
                output = model.generate(
                    **inputs, max_new_tokens=max_new_tokens, do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new_tokens = output[:, inputs["input_ids"].shape[1]:]
            completions.extend(decode_completions(tokenizer, new_tokens.tolist()))
            progress.advance(task, len(batch))
    return completions


REPLACEMENT = "\ufffd"
_MAX_CHAR_TOKENS = 4  # a UTF-8 character is at most 4 bytes, so at most 4 byte-level tokens


def decode_completions(tokenizer: Any, rows: Sequence[Sequence[int]]) -> list[str]:
    """Each row of generated ids as text, decoded whole, without bytes that are not text.

    Byte-level tokens split a multi-byte character (an accent, a CJK character, an emoji) over
    several tokens. A character that `max_new_tokens` cut off, and bytes that never formed one
    (a small or untrained model writes lone lead bytes), would decode as U+FFFD; their tokens are
    left out and the rest is decoded whole, so spacing and every complete character stay.
    """
    special = set(getattr(tokenizer, "all_special_ids", None) or [])
    texts = []
    for row in rows:
        ids = [int(t) for t in row if int(t) not in special]
        text = tokenizer.decode(ids, skip_special_tokens=True)
        texts.append(text if REPLACEMENT not in text else tokenizer.decode(_text_tokens(tokenizer, ids)))
    return texts


def _text_tokens(tokenizer: Any, ids: list[int]) -> list[int]:
    """`ids` without the tokens whose bytes form no complete character."""
    kept: list[int] = []
    pending: list[int] = []  # the tokens of a character still being read
    for token in ids:
        pending.append(token)
        while pending:
            text = tokenizer.decode(pending)
            if REPLACEMENT not in text:
                kept.extend(pending)
                pending = []
            elif REPLACEMENT not in text.rstrip(REPLACEMENT) and len(pending) < _MAX_CHAR_TOKENS:
                break  # an incomplete character: the next token may complete it
            else:
                pending.pop(0)  # its first token starts no character
    return kept  # tokens still pending at the end were a character cut off


def generate_vllm(
    model_id: str, processor: Any, rows: Sequence[dict[str, Any]], *,
    max_new_tokens: int, lora_dir: Path | None = None, lora_rank: int = 64,
    max_model_len: int | None = None, dtype: str = "auto",
) -> list[str]:
    """Greedy completions from vLLM, the LoRA adapter (if any) applied per request."""
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    from trainer.model.loading import chat_processor_kwargs

    llm = LLM(
        model=model_id, dtype=dtype, enable_lora=lora_dir is not None, max_lora_rank=lora_rank,
        limit_mm_per_prompt={"image": 1}, max_model_len=max_model_len,
    )
    requests = [
        {"prompt": processor.apply_chat_template(conversation(row), add_generation_prompt=True,
                                                 tokenize=False,
                                                 processor_kwargs=chat_processor_kwargs(processor)),
         "multi_modal_data": {"image": row["image"]}}
        for row in rows
    ]
    lora = LoRARequest("adapter", 1, str(lora_dir)) if lora_dir is not None else None
    outputs = llm.generate(requests, SamplingParams(temperature=0.0, max_tokens=max_new_tokens),
                           lora_request=lora, use_tqdm=True)
    return [output.outputs[0].text for output in outputs]
