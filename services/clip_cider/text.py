"""Text of the explanation reward: the explanation out of a completion, and CIDEr tokenization."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Literal

from services.common.tags import last_block

_TAG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def tokenize(text: str) -> list[str]:
    """CIDEr tokens without the Java PTB tokenizer: NFC, lower case, punctuation out, split on space.

    Punctuation is every Unicode category P* character; it becomes a space, so "dog,cat" is two
    words. Letters of any script survive, and NFC makes a decomposed Vietnamese "ệ" equal to the
    precomposed one, so references and candidates written either way match.

    >>> tokenize("Con mèo, đang NGỦ!")
    ['con', 'mèo', 'đang', 'ngủ']
    """
    text = unicodedata.normalize("NFC", text).lower()
    return "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text).split()


Tokenizer = Literal["default", "ptb"]
# Written into /v1/info and logged with rewards: a tokenizer change changes every CIDEr value.
TOKENIZER_VERSIONS: dict[str, str] = {
    "default": "nfc-lower-punct-split/1", "ptb": "pycocoevalcap-ptb-3.4.1/1",
}


def tokenizer_for(name: Tokenizer) -> Callable[[str], list[str]]:
    """The CIDEr tokenizer called `name`: `default` (any language) or `ptb` (COCO's, English)."""
    if name == "ptb":
        from services.clip_cider.ptb import tokenize_ptb

        return tokenize_ptb
    return tokenize


def check_tag_name(tag: str) -> str:
    """The tag name itself, or a ValueError naming the allowed form."""
    if not _TAG_NAME.match(tag):
        raise ValueError(f"tag name {tag!r} must be letters, digits, '_' or '-', starting with a letter")
    return tag


def extract_explanation(completion: str, tag: str | None) -> str:
    """The content of the last `<tag>...</tag>` when there is one, else the whole completion.

    >>> extract_explanation("<answer>yes</answer><explain> a dog runs </explain>", "explain")
    'a dog runs'
    """
    if tag:
        # Case-insensitive, as `<Explain>` counts; linear, as model output can be degenerate.
        found = last_block(completion, tag, ignore_case=True)
        if found is not None:
            return found.strip()
    return completion.strip()
