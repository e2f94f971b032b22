"""Format rewards of other trainers, reproduced exactly, so that users migrating keep their numbers.

Each preset gives, for every completion, the number the original function returns. The
originals use Python `re` with lazy groups; these are plain string scans (str.startswith,
str.find, str.count), linear in the completion, and say in their docstring which regex they
stand for and why the scan is the same set of strings.

References:
    TRL, trl/rewards/format_rewards.py (`think_format_reward`);
    open-r1, src/open_r1/rewards.py (`format_reward`, `tag_count_reward`).
"""

from __future__ import annotations

from services.regex_format.rules import Verdict


def trl_think_format(completion: str) -> Verdict:
    """TRL's `think_format_reward`: `re.match(r"^<think>(?!.*<think>)(.*?)</think>.*$", DOTALL)`.

    The completion starts with `<think>` (no white space first); no second `<think>` follows;
    a `</think>` does, with any text, even none, between; anything may come after it. The
    trailing `.*$` always matches under DOTALL, so it adds no condition.

    >>> trl_think_format("<think>\\nhm\\n</think>\\nThe answer.").score
    1.0
    """
    opening = "<think>"
    rest = completion[len(opening):]
    ok = completion.startswith(opening) and opening not in rest and "</think>" in rest
    return Verdict(float(ok), {"think": float(ok)})


_OR1_HEAD = "<think>\n"
_OR1_MIDDLE = "\n</think>\n<answer>\n"
_OR1_TAIL = "\n</answer>"


def openr1_format(completion: str) -> Verdict:
    """open-r1's `format_reward`: `re.match(r"^<think>\\n.*?\\n</think>\\n<answer>\\n.*?\\n</answer>$",
    DOTALL | MULTILINE)`.

    The completion starts with `<think>\\n`; somewhere after that comes `\\n</think>\\n<answer>\\n`
    and after that `\\n</answer>` at the end of the text or before a newline (MULTILINE's `$`),
    so text on later lines is accepted. The lazy groups may span anything, so the earliest
    middle leaves the most room for the tail: it is enough to look after that one.

    >>> openr1_format("<think>\\na\\n</think>\\n<answer>\\n4\\n</answer>").score
    1.0
    >>> openr1_format("<think>a</think><answer>4</answer>").score
    0.0
    """
    if not completion.startswith(_OR1_HEAD):
        return Verdict(0.0, {"match": 0.0})
    middle = completion.find(_OR1_MIDDLE, len(_OR1_HEAD))
    ok = middle >= 0 and _tail_at_line_end(completion, middle + len(_OR1_MIDDLE))
    return Verdict(float(ok), {"match": float(ok)})


def _tail_at_line_end(text: str, start: int) -> bool:
    at = text.find(_OR1_TAIL, start)
    while at >= 0:
        end = at + len(_OR1_TAIL)
        if end == len(text) or text[end] == "\n":
            return True
        at = text.find(_OR1_TAIL, at + 1)
    return False


# open-r1's four markers and what each is called in `parts`.
_OR1_MARKERS = {
    "think_open": "<think>\n",
    "think_close": "\n</think>\n",
    "answer_open": "\n<answer>\n",
    "answer_close": "\n</answer>",
}


def openr1_tag_count(completion: str) -> Verdict:
    """open-r1's `tag_count_reward`: 0.25 for each marker that occurs exactly once.

    The markers carry their newlines: `<think>\\n`, `\\n</think>\\n`, `\\n<answer>\\n`,
    `\\n</answer>`; counts are non-overlapping (`str.count`), order is not checked.

    >>> openr1_tag_count("<think>\\nx\\n</think>\\n<answer>\\n4").score
    0.75
    """
    parts = {name: float(completion.count(marker) == 1) for name, marker in _OR1_MARKERS.items()}
    return Verdict(0.25 * sum(parts.values()), parts)


PRESETS = {
    "trl_think_format": trl_think_format,
    "openr1_format": openr1_format,
    "openr1_tag_count": openr1_tag_count,
}
