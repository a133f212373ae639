"""Similarity functions δ(a, b) in [0, 1] between two answers, and a registry of them.

Built-ins: ``exact`` (normalized exact match, the default), ``f1`` (token F1 on normalized tokens),
``rouge_l`` and ``bleu`` (the open-ended metrics of :mod:`mint.metrics`) and ``numeric`` (numbers compared by value, ``"7" == "7.0" == "seven"``; other answers by exact
match). ``numeric:TOL`` sets a relative tolerance, e.g. ``numeric:0.05``. ``embedding:MODEL`` is the
cosine of sentence embeddings from a local text encoder. A name of the form
``package.module:function`` imports a user function. Register your own with
:func:`register_similarity`.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from functools import lru_cache

from mint.errors import MintError
from mint.metrics import bleu, rouge_l
from mint.metrics.answers import exact_match, normalize_answer, token_f1
from mint.profiling.embedding_similarity import embedding_similarity

Similarity = Callable[[str, str], float]

_UNITS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_TENS = {
    w: 10 * i
    for i, w in enumerate(
        ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], start=2
    )
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_NUMERAL = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[+-]?\.\d+")


def _parse_words(words: list[str]) -> float | None:
    """Value of an English number phrase such as ``twenty one`` or ``two hundred and five``."""
    total, current, seen = 0, 0, False
    for w in words:
        if w == "and" and seen:
            continue
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w in _SCALES:
            total += max(current, 1) * _SCALES[w]
            current = 0
        else:
            return None
        seen = True
    return float(total + current) if seen else None


@lru_cache(maxsize=1 << 16)
def parse_number(s: str) -> float | None:
    """The number an answer states as a whole (``"7"``, ``"-3.5"``, ``"1,200"``, ``"50%"``,
    ``"seven"``, ``"twenty-one"``), or ``None`` if the answer is not just a number."""
    t = str(s).strip().lower().rstrip(".").strip()
    if t.endswith("%"):
        t = t[:-1].strip()
    if _NUMERAL.fullmatch(t):
        return float(t.replace(",", ""))
    words = normalize_answer(t.replace("-", " ")).split()
    return _parse_words(words) if words else None


def make_numeric(rel_tol: float = 1e-9, abs_tol: float = 0.0) -> Similarity:
    """A δ that compares answers stating numbers by value, within ``rel_tol`` (relative to the
    larger magnitude) or ``abs_tol``; answers that are not both numbers fall back to exact match."""
    if not (rel_tol >= 0 and abs_tol >= 0 and math.isfinite(rel_tol) and math.isfinite(abs_tol)):
        raise MintError(f"numeric similarity: tolerances must be finite and >= 0, got {rel_tol}, {abs_tol}")

    def numeric_match(a: str, b: str) -> float:
        x, y = parse_number(a), parse_number(b)
        if x is None or y is None:
            return exact_match(a, b)
        return 1.0 if math.isclose(x, y, rel_tol=rel_tol, abs_tol=abs_tol) else 0.0

    numeric_match.__doc__ = f"Numeric-tolerant match (rel_tol={rel_tol}, abs_tol={abs_tol})."
    return numeric_match


def rouge_l_similarity(a: str, b: str) -> float:
    """ROUGE-L F-measure between two answers (symmetric; ``rouge-score``, :func:`mint.metrics.rouge_l`)."""
    return rouge_l(a, [b])


def bleu_similarity(a: str, b: str) -> float:
    """Sentence BLEU / 100 of ``a`` with ``b`` as the reference (``sacrebleu``, :func:`mint.metrics.bleu`);
    in the MINT score ``a`` is the unimodal answer and ``b`` the multimodal one."""
    return bleu(a, [b])


_REGISTRY: dict[str, Similarity] = {
    "exact": exact_match,
    "f1": token_f1,
    "numeric": make_numeric(),
    "rouge_l": rouge_l_similarity,
    "bleu": bleu_similarity,
}


def register_similarity(name: str, fn: Similarity, *, replace: bool = False) -> None:
    """Make ``fn(a, b) -> float in [0, 1]`` available as ``name`` (``--similarity name``).

    Re-registering an existing name needs ``replace=True``. If ``fn`` has an attribute
    ``equivalence_key`` (a function of one answer such that ``fn(a, b) == (key(a) == key(b))``),
    chance agreement is computed exactly from answer classes, however many distinct answers.
    """
    if not isinstance(name, str) or not name or ":" in name or name != name.strip():
        raise MintError(f"similarity name must be a non-empty string without ':' or spaces, got {name!r}")
    if not callable(fn):
        raise MintError(f"similarity {name!r}: expected a callable, got {type(fn).__name__}")
    if name in _REGISTRY and not replace:
        raise MintError(f"similarity {name!r} is already registered (pass replace=True to override)")
    _REGISTRY[name] = fn


def available_similarities() -> list[str]:
    """Names accepted by :func:`get_similarity` (besides ``numeric:TOL`` and ``module:function``)."""
    return sorted(_REGISTRY)


def get_similarity(name: str) -> Similarity:
    """The similarity registered as ``name``; ``numeric:TOL``, ``embedding:MODEL`` (cosine of sentence
    embeddings, :mod:`mint.profiling.embedding_similarity`) or ``package.module:function`` also work."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    head, sep, tail = str(name).partition(":")
    if sep and head == "numeric":
        try:
            tol = float(tail)
        except ValueError:
            raise MintError(
                f"similarity {name!r}: expected numeric:REL_TOL with a number, e.g. numeric:0.05"
            ) from None
        return make_numeric(rel_tol=tol)
    if sep and head == "embedding":
        return embedding_similarity(tail)
    if sep and head and tail:
        try:
            fn = getattr(importlib.import_module(head), tail)
        except (ImportError, AttributeError) as e:
            raise MintError(f"similarity {name!r}: cannot import it ({e})") from None
        if not callable(fn):
            raise MintError(f"similarity {name!r} is not callable")
        return fn
    raise MintError(
        f"unknown similarity {name!r}; available: {', '.join(available_similarities())}, "
        "numeric:REL_TOL, embedding:MODEL, or package.module:function"
    )
