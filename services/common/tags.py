"""Tag blocks out of model output in linear time: what `re.findall(r"<t>(.*?)</t>", text, re.S)` finds.

A backtracking `<t>(.*?)</t>` costs O(n²) on `"<t>" * 8000` (each opening tag scans to the end
for a closing one that never comes) and holds the GIL the whole time. These scanners use only
`str.find`/`rfind`, and stop at the first opening tag that has no closing tag after it: every later one
has none either. Each returns exactly what the regex would, in the same order.
"""

from __future__ import annotations


def _fold(text: str) -> str:
    """`text` with each character that re.IGNORECASE matches to an ASCII letter made that letter.

    Under re.IGNORECASE a few non-ASCII characters match ASCII letters (sre's case
    equivalences): dotted İ and dotless ı match "i", long ſ matches "s", the Kelvin sign matches
    "k". One character stays one, so every position in the folded text is valid in `text`
    (İ is replaced before `lower()`, which alone would make it two).
    """
    if text.isascii():
        return text.lower()
    return text.replace("\u0130", "i").lower().replace("\u0131", "i").replace("\u017f", "s")


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


def _last_loose_tag(folded: str, name: str, closing: bool, limit: int) -> tuple[int, int] | None:
    """(start, end) of the last `<\\s*name\\s*>` (or `</\\s*name\\s*>`) lying wholly in folded[:limit].

    Such a tag holds one `<`, so two never overlap and the last one holds the last `name` that
    is one: scanning names from the right, each failure costs only the white space beside it.
    """
    end = limit
    while (i := folded.rfind(name, 0, end)) >= 0:
        end = i + len(name) - 1  # names may overlap ("aa" in "aaa"): step one character left
        k = i + len(name)
        while k < limit and folded[k].isspace():
            k += 1
        if k >= limit or folded[k] != ">":
            continue
        j = i - 1
        while j >= 0 and folded[j].isspace():
            j -= 1
        if closing:
            if j >= 1 and folded[j] == "/" and folded[j - 1] == "<":
                return j - 1, k + 1
        elif j >= 0 and folded[j] == "<":
            return j, k + 1
    return None


def last_loose_block(text: str, tag: str) -> str | None:
    """What `<\\s*tag\\s*>(.*)</\\s*tag\\s*>` means to math_equiv, case-insensitively, in linear time.

    The content between the last closing tag and the nearest opening tag before it (so
    `<a>x <a>y</a>` gives "y"); None when either is missing. White space is `str.isspace`, as
    `\\s` is to `re`; case is `re.IGNORECASE`'s for an ASCII `tag`.
    """
    if not tag.isascii():
        raise ValueError(f"case-insensitive tags must be ASCII: {tag!r}")
    folded, name = _fold(text), tag.lower()
    close = _last_loose_tag(folded, name, True, len(folded))
    if close is None:
        return None
    opening = _last_loose_tag(folded, name, False, close[0])
    return None if opening is None else text[opening[1]:close[0]]
