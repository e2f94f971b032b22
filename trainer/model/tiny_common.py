"""What every tiny model shares: its toy vocabulary size, its wide LM head, and a byte-level BPE trained here.

Nothing is downloaded: the tokenizer is trained on a small fixed corpus, so the same code gives the
same merges and a cached model stays reproducible.
"""

from __future__ import annotations

VOCAB_SIZE = 512
LM_HEAD_STD = 0.25

_WORDS = (  # noqa: SIM905 - a sentence reads better than 70 quoted words
    "the a an of in on is are how many what which color colour shape shapes image picture there "
    "red green blue yellow purple orange black white gray circle circles square squares triangle "
    "triangles star count answer question think reason because so total number left right top "
    "bottom one two three four five six seven eight nine ten zero yes no plus minus times equals "
    "x y value solve find step first then final"
).split()
_TAGS = ["<think>", "</think>", "<answer>", "</answer>", "\\boxed{", "}", "$", "=", "+", "-"]


def bpe_tokenizer(special_tokens: list[str], *, eos_token: str, pad_token: str,
                  bos_token: str | None = None, vocab_size: int = VOCAB_SIZE, **extra: object):
    """A byte-level BPE trained on `_corpus`, `special_tokens` kept whole (the first is id 0).

    `extra` goes to the tokenizer as is: a family's named tokens (`extra_special_tokens`) that its
    processor reads as attributes, e.g. Gemma 3's `boi_token`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    named = {"eos_token": eos_token, "pad_token": pad_token}
    if bos_token is not None:
        named["bos_token"] = bos_token
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        additional_special_tokens=[t for t in special_tokens if t != pad_token],
        padding_side="left",
        model_max_length=2048,
        **named,
        **extra,
    )


def _corpus() -> list[str]:
    # Deterministic: the same text gives the same merges, so the cached model is reproducible.
    lines = []
    n = len(_WORDS)
    for i in range(600):
        words = [_WORDS[(i * 7 + j * 13) % n] for j in range(8 + i % 5)]
        tag = _TAGS[i % len(_TAGS)]
        lines.append(f"{tag} {' '.join(words)} {i % 97} {tag}")
    lines += ["system user assistant You are a helpful assistant.", *(_TAGS * 5)]
    return lines
