"""The official VQA accuracy for one question, with the official evaluation's answer processing.

Re-implemented from the VQA evaluation script (GT-Vision-Lab/VQA `vqaEval.py`, in the form the
EvalAI VQA challenge runs) so that each quirk survives on purpose:

- answers and prediction have newlines and tabs turned into spaces and are stripped;
- punctuation and digit/article processing run ONLY when the human answers disagree as raw
  strings; ten identical answers are compared with the raw prediction ("a 0" vs ten "0" is 0.0);
- a punctuation mark is deleted when it touches a space anywhere in the text, or when the text
  holds a digit-comma-digit group; otherwise it becomes a space; "digit" means ASCII 0-9, as in
  Python 2's `re` without re.UNICODE;
- the period pattern's look-behind is mistyped (`(?!<=\\d)`), so every period not followed by a
  digit goes, and `re.UNICODE` lands in `sub`'s `count`: at most 32 periods are removed;
- number words become digits, articles go, and a lower-cased contraction table fills in
  apostrophes (its capitalised keys such as "Im" can never match, as in the original).

References:
    Antol et al., "VQA: Visual Question Answering", ICCV 2015 (the accuracy metric).
    https://github.com/GT-Vision-Lab/VQA (PythonEvaluationTools/vqaEvaluation/vqaEval.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

_NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_ARTICLES = frozenset({"a", "an", "the"})
_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-",
          ">", "<", "@", "`", ",", "?", "!")  # fmt: skip
# The official pattern, typo included: "(?!<=\d)" is a look-ahead for the text "<=digit".
# The official code is Python 2 and compiles these without re.UNICODE, so its \d is [0-9]
# only: "٣.٥" loses its period there, and "٣,٣" is not a digit-comma-digit group. re.ASCII
# keeps that meaning under Python 3, whose \d would match every Unicode digit.
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)", re.ASCII)
_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)", re.ASCII)
# The official code passes re.UNICODE (== 32) where `count` goes.
_PERIOD_COUNT = int(re.UNICODE)

# "spoken form -> written form", one pair per token, as the official table has them (the odd
# entries such as "somebody'd -> somebodyd" included).
_CONTRACTION_PAIRS = """
aint ain't  arent aren't  cant can't  couldve could've  couldnt couldn't
couldn'tve couldn't've  couldnt've couldn't've  didnt didn't  doesnt doesn't  dont don't
hadnt hadn't  hadnt've hadn't've  hadn'tve hadn't've  hasnt hasn't  havent haven't  hed he'd
hed've he'd've  he'dve he'd've  hes he's  howd how'd  howll how'll  hows how's
Id've I'd've  I'dve I'd've  Im I'm  Ive I've  isnt isn't  itd it'd  itd've it'd've
it'dve it'd've  itll it'll  let's let's  maam ma'am  mightnt mightn't  mightnt've mightn't've
mightn'tve mightn't've  mightve might've  mustnt mustn't  mustve must've  neednt needn't
notve not've  oclock o'clock  oughtnt oughtn't  ow's'at 'ow's'at  'ows'at 'ow's'at
'ow'sat 'ow's'at  shant shan't  shed've she'd've  she'dve she'd've  she's she's
shouldve should've  shouldnt shouldn't  shouldnt've shouldn't've  shouldn'tve shouldn't've
somebody'd somebodyd  somebodyd've somebody'd've  somebody'dve somebody'd've
somebodyll somebody'll  somebodys somebody's  someoned someone'd  someoned've someone'd've
someone'dve someone'd've  someonell someone'll  someones someone's  somethingd something'd
somethingd've something'd've  something'dve something'd've  somethingll something'll
thats that's  thered there'd  thered've there'd've  there'dve there'd've  therere there're
theres there's  theyd they'd  theyd've they'd've  they'dve they'd've  theyll they'll
theyre they're  theyve they've  twas 'twas  wasnt wasn't  wed've we'd've  we'dve we'd've
weve we've  werent weren't  whatll what'll  whatre what're  whats what's  whatve what've
whens when's  whered where'd  wheres where's  whereve where've  whod who'd  whod've who'd've
who'dve who'd've  wholl who'll  whos who's  whove who've  whyll why'll  whyre why're
whys why's  wont won't  wouldve would've  wouldnt wouldn't  wouldnt've wouldn't've
wouldn'tve wouldn't've  yall y'all  yall'll y'all'll  y'allll y'all'll  yall'd've y'all'd've
y'alld've y'all'd've  y'all'dve y'all'd've  youd you'd  youd've you'd've  you'dve you'd've
youll you'll  youre you're  youve you've
"""
_tokens = _CONTRACTION_PAIRS.split()
CONTRACTIONS: dict[str, str] = dict(zip(_tokens[::2], _tokens[1::2], strict=True))
del _tokens


def process_punctuation(text: str) -> str:
    """The official `processPunctuation`: delete or blank out punctuation, then strip periods."""
    # Every decision looks at the ORIGINAL text, not the text being rewritten: that is the quirk.
    delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for mark in _PUNCT:
        touches_space = (mark + " ") in text or (" " + mark) in text
        out = out.replace(mark, "" if touches_space or delete_all else " ")
    return _PERIOD.sub("", out, count=_PERIOD_COUNT)


def process_digit_article(text: str) -> str:
    """The official `processDigitArticle`: lower-case, number words to digits, drop articles."""
    words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES)


@functools.lru_cache(maxsize=65536)
def process_answer(text: str) -> str:
    """Both official processing steps, in the official order.

    Cached: in GRPO the K completions of a prompt share its ten human answers.
    """
    return process_digit_article(process_punctuation(text))


def _clean(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> tuple[float, int]:
    """Official VQA accuracy of `prediction` against the human `answers` of one question.

    Args:
        prediction: the model's whole answer.
        answers: the human answers (ten in VQA v2; any number from 2 works the same way).

    Returns:
        (accuracy, matches): the mean over the leave-one-out subsets of min(1, matches/3), and
        how many answers equal the (processed) prediction.

    Example:
        >>> vqa_accuracy("Two", ["2"] * 3 + ["two"] * 2 + ["3"] * 5)[0]
        1.0
    """
    if len(answers) < 2:
        raise ValueError("the official accuracy needs at least two human answers")
    pred = _clean(prediction)
    gts = [_clean(a) for a in answers]
    if len(set(gts)) > 1:
        gts = [process_answer(a) for a in gts]
        pred = process_answer(pred)
    hits = [a == pred for a in gts]
    matches = sum(hits)
    # Leaving answer i out removes exactly one match when answer i itself matched.
    accs = [min(1.0, (matches - hit) / 3) for hit in hits]
    return sum(accs) / len(accs), matches


def single_answer_accuracy(prediction: str, answer: str) -> float:
    """1.0 when the processed prediction equals the processed lone answer, else 0.0.

    With one answer there is no leave-one-out subset and no disagreement to trigger the
    official processing, so both sides are always processed (Path-VQA's "Yes." matches "yes").
    """
    return float(process_answer(_clean(prediction)) == process_answer(_clean(answer)))
