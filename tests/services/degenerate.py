"""What a collapsing policy writes, as a corpus; and the old backtracking extractors, as the oracle.

The corpus has small members (under 4 KB: the slow `re` reference finishes on them in
milliseconds, so results are compared item by item) and large ones (32–64 KB, some over the
default 32768-character cap). The `old_*` functions are the extractors the services used before
they moved to services/common/tags.py and RE2, copied here verbatim so that the new code is held
to exactly their answers. They live only in tests: never call them on the large members.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache

CAP = 32 * 1024
TAGS5 = ("think", "plan", "answer", "explain", "check")
MIXED = "Con mèo đang ngủ 猫が寝ている кот спит القطة نائمة 🐱 ſKıİ "

SMALL: dict[str, str] = {
    "well_formed": "<think>2 + 2 = 4</think>\n<answer>4</answer>",
    "well_formed_explain": "<think>a dog</think> <answer>dog</answer>\n<explain>a dog runs</explain>",
    "open_repeated": "<answer>" * 400,
    "close_repeated": "</answer>" * 400,
    "pairs_repeated": "<answer>4</answer>" * 150,
    "think_repeated_then_answer": "<think>" * 300 + "<answer>4</answer>",
    "draft_then_correct": "<think>hm</think><answer>3</answer> no: <answer>four</answer>",
    "explain_draft_then_correct": "<explain>a cat</explain> <EXPLAIN>a dog runs in the park</explain>",
    "nested": "<answer><answer>4</answer></answer>",
    "loose_tags": "< Answer >3</ANSWER>\n<\tanswer\u3000>4</ answer\n>",
    "nested_think": "<think><think>x</think></think><answer>4</answer>",
    "unclosed": "<think>let me see <answer>4",
    "unopened": "4</answer></think>",
    "reversed": "</answer>4<answer>",
    "empty_blocks": "<think></think><answer> </answer>",
    "case_mixed": "<Think>x</THINK><ANSWER>4</Answer><Explain>a dog</EXPLAIN>",
    "case_unicode": "<explaİn>a cat</EXPLAın><explaın>a cat sleeps</explaİn><anſwer>4</anſwer>",
    "five_tags": "".join(f"<{t}>{t} text</{t}>\n" for t in TAGS5),
    "five_tags_repeated": "".join(f"<{t}>x</{t}>" for t in TAGS5) * 20,
    "five_opens_repeated": "".join(f"<{t}>" for t in TAGS5) * 60,
    "char_flood_a": "a" * 3000,
    "char_flood_lt": "<" * 3000,
    "char_flood_space": " " * 3000 + "<answer>4</answer>",
    "char_flood_newline": "\n" * 3000,
    "mixed_scripts": (MIXED * 8) + "<answer>" + MIXED + "</answer>",
    "mixed_scripts_explain": "<explain>" + MIXED * 10 + "</explain>",
    "reasoning_solution": "<REASONING>steps</REASONING><SOLUTION>4</SOLUTION>" * 3,
    "boxed_flood": "\\boxed{" * 300 + "4}",
    "vacuous": "<answer>Thought process:</answer>",
    "only_answer_tags": "<answer></answer>" * 200,
}


def _fuzz(seed: int, n: int, length: int) -> dict[str, str]:
    """Random strings over tag fragments: where a scanner and a regex most easily disagree."""
    rng = random.Random(seed)
    pieces = ["<", ">", "/", "answer", "explain", "think", "<answer>", "</answer>", "<explain>",
              "</explain>", "<think>", "</think>", "<EXPLAIN>", "</Explain>", "x", " ", "\n",
              "é", "ı", "İ", "ſ", "K", "4", "plan", "check", "<plan>", "</check>"]
    return {f"fuzz_{seed}_{i}": "".join(rng.choice(pieces) for _ in range(rng.randint(0, length)))
            for i in range(n)}


def _block_fuzz(seed: int, n: int) -> dict[str, str]:
    """Near-misses of the strict rule: blocks in random order, gaps, contents, some left open."""
    rng = random.Random(seed)
    names = ["think", "answer", "explain", "plan", "check"]
    gaps = ["", " ", "\n", "\u00a0", "\t\n", "x", "\u200b"]
    contents = ["a", "4", "é ı", "dog", "", " ", "\n", "<think>", "</answer>", "<answer>"]
    out = {}
    for i in range(n):
        parts = []
        order = ["think", "answer", "explain"][: rng.randint(2, 3)]
        if rng.random() < 0.4:
            order = [rng.choice(names) for _ in range(rng.randint(1, 6))]
        elif rng.random() < 0.3:
            order.insert(rng.randint(0, len(order)), rng.choice(names))
        for tag in order:
            close = "" if rng.random() < 0.1 else f"</{tag}>"
            body = rng.choice(contents[:4]) if rng.random() < 0.7 else rng.choice(contents)
            parts.append(f"<{tag}>{body}{rng.choice(contents[:7])}{close}")
            parts.append(rng.choice(gaps))
        out[f"blocks_{seed}_{i}"] = rng.choice(["", " "]) + "".join(parts)
    return out


def _loose_fuzz(seed: int, n: int) -> dict[str, str]:
    """Tags with white space inside and odd case, as math_equiv accepts them (`< Answer >`)."""
    rng = random.Random(seed)
    pieces = ["<", ">", "/", "answer", "ANSWER", "Answer", " ", "\n", "\u3000", "\v", "4", "x",
              "İ", "ı", "ſ", "K", "< answer >", "</ answer\n>", "<answer>", "</answer>", "\\boxed{"]
    return {f"loose_{seed}_{i}": "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
            for i in range(n)}


FUZZ = {**_fuzz(7, 400, 40), **_block_fuzz(11, 600), **_loose_fuzz(13, 600)}

LARGE: dict[str, str] = {
    "open_repeated_32k": "<answer>" * 4000,            # 32 000 characters: under the cap
    "open_repeated_64k": "<answer>" * 8000,            # over the cap
    "five_opens_32k": "".join(f"<{t}>" for t in TAGS5) * 800,
    "pairs_32k": "<think>x</think>" * 2000,
    "flood_a_32k": "a" * 32_000,
    "flood_lt_64k": "<" * 64_000,
    "mixed_scripts_32k": (MIXED * 600)[:32_000],
    "explain_open_32k": "<explain>" * 3500,
    # Every block boundary is a place the old joined pattern could end a group: ~C(44, 5) tries.
    "five_tags_x40_then_junk": "".join(f"<{t}>x</{t}>" for t in TAGS5) * 40 + " x",
}


def items(texts: dict[str, str], reference) -> list[dict]:
    return [{"completion": text, "reference": reference} for text in texts.values()]


# -- the old extractors (before services/common/tags.py), verbatim ---------------------------------


@lru_cache(maxsize=64)
def _old_strict_regex(tags: tuple[str, ...]) -> re.Pattern[str]:
    body = r"\s*".join(f"<{re.escape(t)}>(.*?)</{re.escape(t)}>" for t in tags)
    return re.compile(body, re.DOTALL)


def old_strict_tags(completion: str, tags: tuple[str, ...], partial: bool = False):
    from services.regex_format.rules import Verdict, block_found

    text = completion.strip()
    parts = {t: float(block_found(text, t)) for t in tags}
    match = _old_strict_regex(tags).fullmatch(text)
    ok = match is not None and all(parts.values()) and not any(
        f"<{t}>" in group or f"</{t}>" in group for group in match.groups() for t in tags
    )
    if ok:
        return Verdict(1.0, parts)
    return Verdict(0.5 * sum(parts.values()) / len(tags) if partial else 0.0, parts)


def old_vqa_extract_answer(completion: str, tag: str) -> tuple[str, bool]:
    found = re.findall(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", completion, re.DOTALL)
    if found:
        return found[-1].strip(), True
    return completion.strip(), False


def old_extract_explanation(completion: str, tag: str | None) -> str:
    if tag:
        pattern = rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>"
        found = re.findall(pattern, completion, re.DOTALL | re.IGNORECASE)
        if found:
            return found[-1].strip()
    return completion.strip()


def old_rubric_answer(self, completion: str) -> str | None:
    match = re.search(self.answer_pattern, completion, re.DOTALL)
    if match is None:
        return None
    return (match.group(1) if match.groups() else match.group(0)).strip()


def old_math_last_tag(text: str, tag: str) -> str | None:
    name = re.escape(tag)
    closes = list(re.finditer(rf"</\s*{name}\s*>", text, re.IGNORECASE))
    if not closes:
        return None
    end = closes[-1].start()
    opens = list(re.finditer(rf"<\s*{name}\s*>", text[:end], re.IGNORECASE))
    if not opens:
        return None
    content = text[opens[-1].end():end]
    return content if content.strip() else None
