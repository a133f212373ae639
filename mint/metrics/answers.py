"""Answers compared: normalisation (lowercase, punctuation and articles dropped) and the two closed-answer
comparisons every layer shares, normalized exact match and token F1 (the ``exact`` and ``f1`` of
:mod:`mint.metrics` and of the MINT score's similarity registry, :mod:`mint.profiling.similarity`)."""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import lru_cache

_ARTICLES = re.compile(r"\b(a|an|the)\b")
# a decimal point / thousands comma between two digits is kept; apostrophes and other periods are
# deleted ("it's" -> "its", "U.S.A." -> "usa"); every other punctuation character becomes a space
_KEEP_NUMERIC = re.compile(r"(?<=\d)[.,](?=\d)")
_DELETE = re.compile(r"['\u2019`.]")
_SPACE = re.compile("[{}]".format(re.escape("".join(c for c in string.punctuation if c not in "'`."))))


@lru_cache(maxsize=1 << 16)
def normalize_answer(s: str) -> str:
    """Lowercase, strip punctuation and the articles a/an/the, collapse whitespace.

    A decimal point or thousands comma between two digits is kept (``"3.5"`` stays ``"3.5"``, not
    ``"35"``); apostrophes and other periods are deleted (``"U.S.A."`` -> ``"usa"``); every other
    punctuation character becomes a space (``"red/blue"`` -> ``"red blue"``). An answer that is
    only an article, such as the choice letter ``"A"``, keeps it.
    """
    s = str(s).lower()
    parts = _KEEP_NUMERIC.split(s)
    marks = _KEEP_NUMERIC.findall(s)
    parts = [_SPACE.sub(" ", _DELETE.sub("", p)) for p in parts]
    s = "".join(p + m for p, m in zip(parts, marks + [""]))
    stripped = " ".join(_ARTICLES.sub(" ", s).split())
    # an answer that is only an article (a choice letter "A", "(a)") keeps it
    return stripped if stripped else " ".join(s.split())


def exact_match(a: str, b: str) -> float:
    """1.0 if the normalized answers are equal, else 0.0."""
    return 1.0 if normalize_answer(a) == normalize_answer(b) else 0.0


# answers equal under ``exact`` exactly when their keys are equal; lets chance agreement be
# computed from class counts instead of all pairs
exact_match.equivalence_key = normalize_answer  # type: ignore[attr-defined]


def token_f1(a: str, b: str) -> float:
    """Token-level F1 between the normalized answers (1.0 when both are empty)."""
    ta, tb = normalize_answer(a).split(), normalize_answer(b).split()
    if not ta or not tb:
        return 1.0 if ta == tb else 0.0
    common = sum((Counter(ta) & Counter(tb)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(ta), common / len(tb)
    return 2 * precision * recall / (precision + recall)
