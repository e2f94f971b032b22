"""COCO caption tokenization in Python: what pycocoevalcap's PTBTokenizer returns, without Java.

pycocoevalcap tokenizes captions with Stanford CoreNLP 3.4.1's PTBTokenizer (`-preserveLines
-lowerCase`) and then drops the tokens in its PUNCTUATIONS list. This module reproduces that
pipeline for one caption: a longest-match lexer over the line (JFlex semantics: the longest
match wins, trailing context counts towards its length, ties go to the earlier rule), whose
rules follow the PTBLexer grammar (contractions split as `do n't`, `man 's`; hyphenated words and numbers
kept whole; abbreviations and acronyms keep their period; brackets become `-lrb-` & co., which
pycocoevalcap does not drop because it compares them in upper case), then the same filter.

It is checked token for token against the Java tokenizer's output on the sentences in
tests/data/ptb/. A character no rule here matches is deleted, as the Stanford lexer's default
`untokenizable=firstDelete` does with the characters it does not know; rare symbols outside
the tested set may differ. Every rule is matched within a bounded window from its start, so a
line of any length costs time linear in its length (a token longer than the window, which no
caption has, is cut).

Reference: pycocoevalcap/tokenizer/ptbtokenizer.py; Stanford CoreNLP PTBLexer.flex.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# pycocoevalcap's PUNCTUATIONS, compared with the lower-cased tokens it receives.
PUNCTUATIONS = frozenset({"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                          ".", "?", "!", ",", ":", "-", "--", "...", ";"})  # fmt: skip
_WINDOW = 256  # no rule looks further than this from where it starts

# A letter of any script (Java's [:letter:]), not the digit-like No characters Python's \w
# counts (½, ²), and the soft hyphen, which PTBLexer allows inside words and then deletes.
L = "(?:[^\\W\\d_\u00b2\u00b3\u00b9\u00bc-\u00be\u2070-\u209f\u2150-\u218f\u2460-\u24ff]|\u00ad)"
APOS = "['\u0092\u2019]"
APOSETC = "['\u0092\u2019\u0091\u2018\u201b]"
ACRO = r"[A-Za-z](?:\.[A-Za-z])+"
WORD = rf"{L}(?:{L}|\d)*(?:[.!?]{L}(?:{L}|\d)*)*"
ABTITLE = (r"Mr|Mrs|Ms|(?-i:M)iss|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|"
           r"Maj|Sgt|Cpl|Pvt|Mt|Capt|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det")
ABSTATE = (r"Ala|Ariz|(?-i:A)rk|Calif|Colo|Conn|Dak|Del|Fla|Ga|(?-i:I)ll|Ind|Kans?|Ky|La|"
           r"(?-i:M)ass|Md|Mich|Minn|(?-i:M)iss|Mo|Mont|Neb|Nev|Okla|(?-i:O)re|Pa|Penn|Tenn|Tex|"
           r"Va|Vt|(?-i:W)ash|Wisc?|Wyo")
ABBREV1 = (r"(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Mon|Tue|Tues|Wed|Thu|Thurs|Fri|"
           rf"{ABSTATE}|Inc|Cos?|Corp|Pp?tys?|Ltd|Plc|Bancorp|Dept|Bhd|Assn|Univ|Intl|Sys|"
           r"Nos?|Prop|(?:Ed|Ph)\.D|Ph|tel|est|ext|sq|ft|Jr|Sr|Bros|Blvd|Rd|Esq|etc|al|seq)\.")
ABBREV2 = rf"(?:[A-Za-z]|{ABTITLE}|vs|Alex|Wm|Jos|Cie|cf|TREAS|Invt|Elec|Natl|M[ft]g)\."
APOWORD = (f"{APOS}n{APOS}?", f"(?-i:[lLdDjJ]){APOS}", f"Dunkin{APOS}", f"somethin{APOS}",
           f"ol{APOS}", f"{APOS}em", rf"(?-i:[A-HJ-XZn]){APOSETC}{L}{{2}}{L}*", f"{APOS}[2-9]0s",
           f"{APOS}till?", rf"{L}+(?-i:[aeiouyAEIOUY]){APOSETC}(?-i:[aeiouA-Z]){L}*",
           f"{APOS}cause", r"cont'd\.?", "'twas", "nor'easter", "c'mon", "e'er", "s'mores",
           "ev'ry", "li'l", "nat'l")
THING_PART = rf"(?:(?-i:[dDoOlL]){APOSETC}(?:{L}|\d))?(?:{L}|\d)+"
THING = rf"{THING_PART}(?:[-_\u058a\u2010\u2011]{THING_PART})*"
HTHING = rf"[A-Za-z0-9][A-Za-z0-9.,\u00ad]*(?:-(?:{ACRO}\.|[A-Za-z0-9\u00ad]+))+"
SMILEY = r"[<>]?[:;=][\-o*']?[()DPdpO\\{@|\[\]]"
_U = "\t\n\f\r\"<>|()"  # what a URL or an e-mail address cannot contain
FULLURL = rf"https?://[^ {_U}]+[^ {_U}.!?{{}},-]"
_URL_PATH = rf"(?:/[^ {_U}]+[^ {_U}.!?{{}},-])?"
LIKELYURL = (rf"www\.(?:[^ {_U}.!?{{}},]+\.)+[a-zA-Z]{{2,4}}{_URL_PATH}",
             rf"(?:[^ {_U}`'.!?{{}},-_$]+\.)+(?:com|net|org|edu){_URL_PATH}")
EMAIL = (rf"[a-zA-Z0-9][^ {_U}{{}}\u00a0]*@(?:[^ {_U}{{}}.\u00a0]+\.)*"
         rf"[^ {_U}{{}}\[\].,;:\u00a0]+")
QUOTES = ("['\u0092\u2019]", "''", "[`\u2018\u2019\u201a\u201b\u201c\u201d\u0091\u0092\u0093"
          "\u0094\u201e\u201f\u2039\u203a\u00ab\u00bb]{1,2}")
MISC = ("[\u00a6\u00a7\u00a8\u00a9\u00ac\u00ae\u00af\u00b0-\u00ba\u00d7\u00f7\u2020-\u2023"
        "\u2032-\u2038\u2044\u2100-\u214f\u2190-\u21ff\u2200-\u22ff\u2300-\u23ff\u2600-\u26ff]")

_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-"}
_FRACTIONS = {"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3"}
_CURRENCY = {"\u00a2": "cents", "\u00a3": "#", "\u0080": "$", "\u00a4": "$", "\u20a0": "$", "\u20ac": "$"}
_QUOTE_MAP = str.maketrans({"\u0091": "`", "\u2018": "`", "\u201b": "`", "\u2039": "`",
                            "\u0092": "'", "\u2019": "'", "\u203a": "'", "\u0093": "``",
                            "\u201c": "``", "\u00ab": "``", "\u0094": "''", "\u201d": "''",
                            "\u00bb": "''", '"': "''"})  # fmt: skip


def _same(text: str) -> str:
    return text


def _quote(text: str) -> str:
    return text.translate(_QUOTE_MAP)


def _left_quote(text: str) -> str:
    return _quote(text.replace("'", "`").replace('"', "``"))


def _dashes(text: str) -> str:
    return "--" if 3 <= len(text) <= 4 else text


def _smiley(text: str) -> str:
    return text.replace("(", "-LRB-").replace(")", "-RRB-")


@dataclass(frozen=True)
class _Rule:
    """A token pattern, the trailing context it needs (counted for the longest match but not
    consumed), how many characters it keeps when it pushes back (`cannot` -> `can`), and the
    token it writes."""

    pattern: re.Pattern[str]
    context: re.Pattern[str] | None = None
    keep: int | None = None
    emit: Callable[[str], str] = _same


def _r(pattern: str | tuple[str, ...], context: str | None = None, keep: int | None = None,
       emit: Callable[[str], str] = _same) -> tuple[_Rule, ...]:
    """One rule per alternative: JFlex takes the longest alternative, Python's `|` the first."""
    ctx = re.compile(context, re.IGNORECASE) if context else None
    alternatives = (pattern,) if isinstance(pattern, str) else pattern
    return tuple(_Rule(re.compile(p, re.IGNORECASE), ctx, keep, emit) for p in alternatives)


# In the order of PTBLexer's rules: among matches of equal length the earlier rule wins.
_RULES: tuple[tuple[_Rule, ...], ...] = (
    _r("cannot", keep=3),
    _r("gonna|gotta|lemme|gimme|wanna", keep=3),
    _r(r"</?[A-Za-z!][^>]*>"),
    _r("&(?:MD|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015]", emit=lambda t: "--"),
    _r("&amp;", emit=lambda t: "&"),
    _r(WORD, context=rf"{APOS}(?:[msd]|re|ve|ll)"),
    _r(r"[A-Za-z\u00ad]*(?-i:[A-MO-Za-mo-z])\u00ad*", context=f"n{APOSETC}t"),
    _r(WORD),
    _r(f"{APOS}t", context="(?:is|was)"),
    _r(APOWORD),
    _r(f"y{APOS}", context=L),
    _r(FULLURL),
    _r(LIKELYURL),
    _r(EMAIL),
    _r(rf"{APOS}(?:[msd]|re|ve|ll)", context="[^A-Za-z]", emit=_quote),
    _r(f"n{APOSETC}t", emit=_quote),
    _r(r"\d{1,2}[\-/]\d{1,2}[\-/]\d{2,4}"),
    _r(r"[\-+]?(?:\d*(?:[.:,\u00ad\u066b\u066c]\d+)+|\d+)"),
    _r(r"(?:\d{1,4}[- \u00a0])?\d{1,4}(?:\\?/|\u2044)\d{1,4}"),
    _r("[\u00bc\u00bd\u00be\u2153\u2154]", emit=lambda t: _FRACTIONS[t]),
    _r((r"-(?:RRB|LRB|RCB|LCB|RSB|LSB)-", r"C\.D\.s", "pro-", "anti-", "S(?:&|&amp;)P-500",
        "S(?:&|&amp;)Ls", f"Cap{APOS}n", f"c{APOS}est"), emit=lambda t: t.replace("&amp;", "&")),
    _r(r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}"),
    _r(r"(?-i:[A-Z])*\$|#"),
    _r("[\u00a2\u00a3\u00a4\u00a5\u0080\u20a0\u20ac\u060b\u0e3f\u20a4\uffe0\uffe1\uffe5\uffe6]",
       emit=lambda t: _CURRENCY.get(t, t)),
    _r(rf"{ACRO}\.", context=r"\s+(?-i:About|According|Additionally|After|An|A|As|At|But|Earlier|He|"
       r"Her|Here|However|If|In|It|Last|Many|More|Mr\.|Ms\.|Now|Once|One|Other|Our|She|Since|So|"
       r"Some|Such|That|The|Then|There|These|They|This|We|When|While|What|Yet|You)\s"),
    _r(ABBREV1),
    _r((ABBREV2, r"a\.k\.a\.", rf"{ACRO}\.")),
    _r(rf"{APOS}[0-9][0-9]", context=r"\s|$"),
    _r(rf"{WORD}\.", context="[,;:]"),
    _r(r"(?:\([0-9]{3}\)[ \u00a0]?|[0-9]{3}[\- \u00a0.])[0-9]{3}[\- \u00a0.][0-9]{4}", emit=_smiley),
    _r(SMILEY, emit=_smiley),
    _r((r"#[A-Za-z_][A-Za-z0-9_]*", r"@[A-Za-z_][A-Za-z0-9_]*")),
    _r('"|&quot;', context="[A-Za-z0-9$]", emit=lambda t: "``"),
    _r('"|&quot;', emit=lambda t: "''"),
    _r(r"[+%&\u2030\u2031~^|\\=/]"),
    _r(r"[<>\[\](){}]", emit=lambda t: _BRACKETS.get(t, t)),
    _r(r"-+", emit=_dashes),
    _r("\\.{3,5}|[\u0085\u2026]", emit=lambda t: "..."),
    _r(r"@+|#+|_+|\*+"),
    _r(r"[,;:]"),
    _r(r"[?!]+"),
    _r("[.\u00a1\u00bf\u037e\u0589\u061f\u06d4\u0700-\u0702\u07fa]"),
    _r(rf"{HTHING}\.", context="[,;:]"),
    _r(HTHING),
    _r(rf"{THING}\.", context="[,;:]"),
    _r(THING),
    _r(r"(?-i:[A-Z])+(?:[+&]|&amp;)(?-i:[A-Z])+(?:(?:[+&]|&amp;)(?-i:[A-Z])+)*",
       emit=lambda t: t.replace("&amp;", "&")),
    _r("'", context=r"(?-i:[A-Za-z])[^\s]", emit=_left_quote),
    _r(rf"{APOS}(?:[msd]|re|ve|ll)", emit=_quote),
    _r(QUOTES, emit=_quote),
    _r(MISC),
)
RULES: tuple[_Rule, ...] = tuple(rule for group in _RULES for rule in group)


def _next_token(chunk: str, at: int) -> tuple[str | None, int]:
    """The token starting at `at` (None for a deleted character) and where the next one starts."""
    best_len, best = 0, None
    end = min(len(chunk), at + _WINDOW)
    for rule in RULES:
        m = rule.pattern.match(chunk, at, end)
        if m is None or m.end() == at:
            continue
        length = m.end() - at
        if rule.context is not None:
            c = rule.context.match(chunk, m.end(), min(len(chunk), m.end() + _WINDOW))
            if c is None:
                continue
            length += c.end() - m.end()
        if length > best_len:
            best_len, best = length, (rule, m.group())
    if best is None:
        return None, at + 1  # untokenizable: deleted
    rule, text = best
    kept = len(text) if rule.keep is None else rule.keep
    return rule.emit(text[:kept]), at + kept


def ptb_tokens(text: str) -> list[str]:
    """Stanford PTBTokenizer's tokens of one line (`-lowerCase`), before punctuation removal.

    A token with a space inside (a phone number, `3 1/2`) comes out as its parts, as
    pycocoevalcap's `split(' ')` of the Java output gives them.
    """
    # A line of pycocoevalcap's input file ends in a newline; trailing contexts may need it.
    padded, at, tokens = text + "\n", 0, []
    while at < len(text):
        if padded[at].isspace():
            at += 1
            continue
        token, at = _next_token(padded, at)
        if token is not None:
            tokens.extend(token.replace("\u00ad", "").lower().split())
    return tokens


def tokenize_ptb(text: str) -> list[str]:
    """pycocoevalcap's tokens of one caption: PTB tokens, minus its PUNCTUATIONS.

    >>> tokenize_ptb("A man's snow-covered tire-swing, isn't it?")
    ['a', 'man', "'s", 'snow-covered', 'tire-swing', 'is', "n't", 'it']
    """
    return [t for t in ptb_tokens(text.replace("\n", " ")) if t not in PUNCTUATIONS]
