"""The CPU demo's policy: the tiny Qwen2.5-VL with the format tags added as single tokens.

Why the demo does not train the plain `tiny://qwen2.5-vl`: its byte-level BPE spells
`<answer>` as `<`, `answer`, `>`, so `<answer>2</answer>` is seven tokens that a random model
would have to write in order, which it never does by chance; GRPO then sees only zeros for the
format reward and has nothing to compare (the old demo's format reward was 0 at every step, and
its 4-token completions could not have held the tags anyway). A pretrained VLM knows its tags;
this builder gives the tiny one the nearest thing that is still honest:

- each tag is one token (added to the tokenizer, not special, so decoding keeps it), and
- its output row is fitted (least squares over the model's hidden states at completion
  positions of demo prompts) so that the tag starts with the probabilities of `TAG_PRIOR`: about half the
  completions open with `<answer>`, and `</answer>` turns up now and then afterwards. Closing
  the block exactly once, putting an answer inside and stopping right after it (which is what
  the format reward pays 1.0 for) is left to GRPO; in the first ten steps about one
  completion in five earns the 0.5 for the block (format reward mean 0.11).

The tiny builder itself (trainer/tiny.py) is not changed: this module reads its output and
saves the demo's model beside it, keyed by the tiny model's version and this module's.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

DEMO_TAGS = ("<answer>", "</answer>")
# Bump when the build changes, so a stale demo model is rebuilt instead of reused.
DEMO_MODEL_VERSION = "3"
# Each tag's probability before training: (as the first completion token, at each later position).
# About half the completions open with <answer>; a few close it, once, a few tokens later.
TAG_PRIOR = {"<answer>": (0.5, 0.01), "</answer>": (0.005, 0.05)}
PROBE_TOKENS, PROBE_SEQUENCES = 8, 16
_PROBE_TEXT = "{}\nAnswer in <answer></answer>."
_PROBE_QUESTIONS = ("How many circles are in the image? Answer with a number.",
                    "What color is the squares? Answer with one word.",
                    "What shape is drawn in the image? Answer with one word.")


def demo_model_dir() -> Path:
    """The demo model's directory (model + processor), built once next to the tiny model."""
    from trainer.tiny import tiny_model_dir

    base = tiny_model_dir()
    target = base.parent / f"{base.name}-demo-tags-v{DEMO_MODEL_VERSION}"
    if (target / "config.json").exists() and (target / "processor_config.json").exists():
        return target
    # Build beside the target and rename, as trainer/tiny.py does: no half-written model is seen.
    tmp = Path(tempfile.mkdtemp(prefix=".building-demo-", dir=base.parent))
    try:
        build_demo_model(base, tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def build_demo_model(base_dir: Path, out_dir: Path) -> Path:
    """The tiny model of `base_dir` with `DEMO_TAGS` as single tokens, saved to `out_dir`."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(base_dir)
    tokenizer = processor.tokenizer
    added = tokenizer.add_tokens(list(DEMO_TAGS))
    model = AutoModelForImageTextToText.from_pretrained(base_dir, dtype=torch.float32)
    old = model.get_output_embeddings().weight.shape[0]
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():
        _init_tag_rows(model, tokenizer, first_new=old)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    log.info("demo model: %d tag tokens added to the tiny model, saved in %s", added, out_dir)
    return out_dir


def _init_tag_rows(model, tokenizer, *, first_new: int) -> None:
    import torch

    torch.manual_seed(0)
    emb = model.get_input_embeddings().weight
    for token in range(first_new, emb.shape[0]):
        # A new tag reads like a copy of an ordinary token. Set before the probe, whose prompts
        # hold the tags: resize_token_embeddings left these rows unseeded random.
        emb[token] = emb[torch.randint(0, first_new, (1,)).item()]
    hidden, first = _generation_states(model, tokenizer, first_new)
    hidden = hidden.double()  # a well-conditioned fit
    head = model.get_output_embeddings().weight
    old_head = head[:first_new].double()
    others = torch.logsumexp(hidden @ old_head.T, dim=1)
    base_row = old_head.mean(0)
    gram = hidden.T @ hidden + 0.1 * torch.eye(hidden.shape[1], dtype=torch.float64)
    for offset, tag in enumerate(DEMO_TAGS):
        at_start, later = TAG_PRIOR[tag]
        # The logit that gives the tag its prior probability at each position, then the output
        # row whose logits come closest to those (least squares, ridge-damped).
        p = torch.where(first, at_start, later).double()
        target = others + torch.log(p / (1 - p))
        row = base_row + torch.linalg.solve(gram, hidden.T @ (target - hidden @ base_row))
        head[first_new + offset] = row.float()


def _generation_states(model, tokenizer, first_new: int):
    """Final hidden states at completion positions of demo-like prompts, and which come first.

    The continuations are random ordinary tokens from a seeded generator rather than samples of
    the model, so the build does not depend on how this machine's sampling kernels round.
    """
    import torch

    generator = torch.Generator().manual_seed(0)
    states, first = [], []
    for question in _PROBE_QUESTIONS:
        chat = tokenizer.apply_chat_template(
            [{"role": "user", "content": _PROBE_TEXT.format(question)}], tokenize=False,
            add_generation_prompt=True)
        prompt = tokenizer(chat, return_tensors="pt")["input_ids"]
        tail = torch.randint(0, first_new, (PROBE_SEQUENCES, PROBE_TOKENS - 1), generator=generator)
        ids = torch.cat([prompt.expand(PROBE_SEQUENCES, -1), tail], dim=1)
        hidden = model.model.language_model(input_ids=ids).last_hidden_state  # after the final norm
        hidden = hidden[:, prompt.shape[1] - 1:]
        states.append(hidden.reshape(-1, hidden.shape[-1]))
        is_first = torch.zeros(hidden.shape[:2], dtype=torch.bool)
        is_first[:, 0] = True
        first.append(is_first.reshape(-1))
    return torch.cat(states), torch.cat(first)
