"""Tag blocks out of model output in linear time: what `re.findall(r"<t>(.*?)</t>", text, re.S)` finds.

A backtracking `<t>(.*?)</t>` costs O(n²) on `"<t>" * 8000` (each opening tag scans to the end
for a closing one that never comes) and holds the GIL the whole time. These scanners use only
`str.find`, and stop at the first opening tag that has no closing tag after it: every later one
has none either. Each returns exactly what the regex would, in the same order.
"""

from __future__ import annotations

# Under re.IGNORECASE a few non-ASCII characters match ASCII letters (sre's case equivalences):
# dotless ı and dotted İ match "i", long ſ matches "s", the Kelvin sign matches "k". Folding
# them with ASCII upper case, one character for one, keeps every position of the text valid.
_FOLD = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_FOLD.update({0x130: ord("i"), 0x131: ord("i"), 0x17F: ord("s"), 0x212A: ord("k")})


def _fold(text: str) -> str:
    return text.translate(_FOLD)


def block_spans(text: str, tag: str, *, ignore_case: bool = False) -> list[tuple[int, int]]:
    """(start, end) of every `<tag>…</tag>` content, left to right, as `re.finditer` pairs them.

    Each opening tag is paired with the first closing tag after it; the next block is looked
    for after that closing tag, so `<t>a<t>b</t>` is one block, `a<t>b`. With `ignore_case`,
    `tag` must be ASCII (case-insensitive matching is then exactly `re.IGNORECASE`'s).

    >>> block_spans("<t>a</t> <t>b</t>", "t")
    [(3, 4), (12, 13)]
    """
    if ignore_case:
        if not tag.isascii():
            raise ValueError(f"case-insensitive tags must be ASCII: {tag!r}")
        text, tag = _fold(text), tag.lower()
    opening, closing = f"<{tag}>", f"</{tag}>"
    spans: list[tuple[int, int]] = []
    pos = 0
    while (start := text.find(opening, pos)) >= 0:
        content = start + len(opening)
        end = text.find(closing, content)
        if end < 0:
            break
        spans.append((content, end))
        pos = end + len(closing)
    return spans


def blocks(text: str, tag: str, *, ignore_case: bool = False) -> list[str]:
    """The content of every `<tag>…</tag>`: `re.findall(r"<tag>(.*?)</tag>", text, re.S)`."""
    return [text[a:b] for a, b in block_spans(text, tag, ignore_case=ignore_case)]


def last_block(text: str, tag: str, *, ignore_case: bool = False) -> str | None:
    """The content of the last `<tag>…</tag>` (unstripped), or None when there is none."""
    spans = block_spans(text, tag, ignore_case=ignore_case)
    if not spans:
        return None
    a, b = spans[-1]
    return text[a:b]


def first_block(text: str, tag: str) -> str | None:
    """The content of the first `<tag>…</tag>`: `re.search(r"<tag>(.*?)</tag>", text, re.S)`."""
    opening, closing = f"<{tag}>", f"</{tag}>"
    start = text.find(opening)
    if start < 0:
        return None
    end = text.find(closing, start + len(opening))
    return None if end < 0 else text[start + len(opening):end]
