"""The CPU demo's policy: the tiny Qwen2.5-VL with the format tags added as single tokens.

Why the demo does not train the plain `tiny://qwen2.5-vl`: its byte-level BPE spells
`<answer>` as `<`, `answer`, `>`, so `<answer>2</answer>` is seven tokens that a random model
would have to write in order, which it never does by chance; GRPO then sees only zeros for the
format reward and has nothing to compare (the old demo's format reward was 0 at every step, and
its 4-token completions could not have held the tags anyway). A pretrained VLM knows its tags;
this builder gives the tiny one the nearest thing that is still honest:

- each tag is one token (added to the tokenizer, not special, so decoding keeps it), and
- the output rows of the tags and of the copy task's answers (`1`, `2`, `3`, already single
  tokens) are fitted (least squares over the model's hidden states at completion positions of
  demo prompts) to the probabilities of `TOKEN_PRIOR`: about half the completions open with
  `<answer>`, an answer often follows `<answer>`, and `</answer>` often follows an answer. That
  is the format's grammar, not the answer: the fit is the same for every prompt, and each
  answer's row only adds its own random direction (so the answers' logits can differ at all).
  Writing the block once and stopping after it (what the format reward pays 1.0 for) and
  picking the answer the question spells out are left to GRPO; in the first ten steps the
  format reward's mean is about 0.1 and the exact answer reward's 0.06-0.08 (seeds 0-2).

The tiny builder itself (trainer/model/tiny.py) is not changed: this module reads its output and
saves the demo's model beside it, keyed by the tiny model's version and this module's.
"""

from __future__ import annotations

import logging
from pathlib import Path

from trainer.data.synthetic import COPY_MAX, copy_question

log = logging.getLogger(__name__)

DEMO_TAGS = ("<answer>", "</answer>")
# Bump when the build changes, so a stale demo model is rebuilt instead of reused.
DEMO_MODEL_VERSION = "4"
# The copy task's answers (trainer/data/synthetic.py), each one token of the tiny tokenizer.
DEMO_ANSWERS = tuple(str(n) for n in range(1, COPY_MAX + 1))
# Target probabilities of the fitted tokens: (as the first completion token, right after the
# token's cue, anywhere else). The cue of an answer is `<answer>`; the cue of `</answer>` is an
# answer. The least-squares fit lands below the cued targets; measured on the copy prompts:
# `<answer>` first 0.35-0.43, each answer 0.09-0.22 after `<answer>`, `</answer>` about 0.5 after
# an answer. Which answer leads differs by prompt only through each answer's own random
# direction (`ANSWER_SPREAD`): by chance the right one leads on the "2" and "3" prompts (0.17,
# 0.19 against at most 0.13) and `2` leads on the "1" prompts (0.22 against 0.09).
TOKEN_PRIOR = {"<answer>": (0.5, 0.01, 0.01), "</answer>": (0.005, 0.7, 0.05),
               **{d: (0.0005, 0.3, 0.01) for d in DEMO_ANSWERS}}
# Norm of an answer's own random direction, relative to its fitted row. At 1.0 the base model's
# greedy answers were already right on the "2" and "3" prompts and training only kept that map;
# at 0.5 the base writes no answer greedily, and GRPO's map (seeds 0-2) gets "1" right against
# that lead in two seeds, all three answers in one, two of three in the others.
ANSWER_SPREAD = 0.5
PROBE_TOKENS, PROBE_SEQUENCES = 8, 16
_PROBE_TEXT = "{}\nAnswer in <answer></answer>."
_PROBE_QUESTIONS = tuple(copy_question(n) for n in range(1, COPY_MAX + 1))


def demo_model_dir() -> Path:
    """The demo model's directory (model + processor), built once next to the tiny model."""
    from trainer.model.tiny import build_atomically, tiny_model_dir

    base = tiny_model_dir()
    target = base.parent / f"{base.name}-demo-tags-v{DEMO_MODEL_VERSION}"
    if (target / "config.json").exists() and (target / "processor_config.json").exists():
        return target
    return build_atomically(target, lambda tmp: build_demo_model(base, tmp))


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


def _prior(token: str, first, prev, ids: dict[str, int]):
    """Each fitted token's probability at every probe position: the format's grammar, no answer."""
    import torch

    after_open = prev == ids["<answer>"]
    after_answer = torch.zeros_like(first)
    for digit in DEMO_ANSWERS:
        after_answer |= prev == ids[digit]
    at_start, after, anywhere = TOKEN_PRIOR[token]
    cue = after_open if token in DEMO_ANSWERS else after_answer
    p = torch.full(first.shape, anywhere, dtype=torch.float64)
    p[cue] = after
    p[first] = at_start
    return p


def _init_tag_rows(model, tokenizer, *, first_new: int) -> None:
    import torch

    torch.manual_seed(0)
    emb = model.get_input_embeddings().weight
    for token in range(first_new, emb.shape[0]):
        # A new tag reads like a copy of an ordinary token. Set before the probe, whose prompts
        # hold the tags: resize_token_embeddings left these rows unseeded random.
        emb[token] = emb[torch.randint(0, first_new, (1,)).item()]
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in TOKEN_PRIOR}
    hidden, first, prev = _generation_states(model, tokenizer, first_new, ids)
    hidden = hidden.double()  # a well-conditioned fit
    head = model.get_output_embeddings().weight
    keep = [i for i in range(first_new) if i not in ids.values()]
    old_head_all = head.double().clone()
    old_head = head[keep].double()
    others = torch.logsumexp(hidden @ old_head.T, dim=1)
    base_row = old_head.mean(0)
    gram = hidden.T @ hidden + 0.1 * torch.eye(hidden.shape[1], dtype=torch.float64)
    for token, index in ids.items():
        # The logit that gives the token its prior probability at each position, then the output
        # row whose logits come closest to those (least squares, ridge-damped).
        p = _prior(token, first, prev, ids)
        target = others + torch.log(p / (1 - p))
        row = base_row + torch.linalg.solve(gram, hidden.T @ (target - hidden @ base_row))
        if token in DEMO_ANSWERS:
            # Its own random direction on top of the fitted prior: the answers' logits then
            # differ with the hidden state (identical rows could never tell answers apart).
            own = old_head_all[index] - base_row
            row = row + own * (ANSWER_SPREAD * row.norm() / own.norm())
        head[index] = row.float()


def _generation_states(model, tokenizer, first_new: int, ids: dict[str, int]):
    """Final hidden states at completion positions of demo-like prompts, which come first, and
    the token each position reads.

    The continuations are random ordinary tokens from a seeded generator rather than samples of
    the model, so the build does not depend on how this machine's sampling kernels round; half
    open with `<answer>` and a quarter put an answer after it, so the fit sees those contexts.
    """
    import torch

    generator = torch.Generator().manual_seed(0)
    digits = torch.tensor([ids[d] for d in DEMO_ANSWERS])
    states, first, prev = [], [], []
    for question in _PROBE_QUESTIONS:
        chat = tokenizer.apply_chat_template(
            [{"role": "user", "content": _PROBE_TEXT.format(question)}], tokenize=False,
            add_generation_prompt=True)
        prompt = tokenizer(chat, return_tensors="pt")["input_ids"]
        tail = torch.randint(0, first_new, (PROBE_SEQUENCES, PROBE_TOKENS - 1), generator=generator)
        tail[::2, 0] = ids["<answer>"]
        tail[::4, 1] = digits[torch.randint(0, len(digits), (PROBE_SEQUENCES // 4,),
                                            generator=generator)]
        ids_in = torch.cat([prompt.expand(PROBE_SEQUENCES, -1), tail], dim=1)
        hidden = model.model.language_model(input_ids=ids_in).last_hidden_state  # final norm
        hidden = hidden[:, prompt.shape[1] - 1:]
        states.append(hidden.reshape(-1, hidden.shape[-1]))
        is_first = torch.zeros(hidden.shape[:2], dtype=torch.bool)
        is_first[:, 0] = True
        first.append(is_first.reshape(-1))
        prev.append(ids_in[:, prompt.shape[1] - 1:].reshape(-1))
    return torch.cat(states), torch.cat(first), torch.cat(prev)
