"""Task metrics: every sample of a task scored against its references, by name.

Closed answers: ``exact`` (normalized exact match), ``choice`` (the same, on an answer picked among the
choices), ``f1`` (token F1). Open answers, from the field's own libraries: ``rouge_l`` (ROUGE-L F-measure,
``rouge-score``) and ``bleu`` (sentence BLEU / 100, ``sacrebleu``), ``pip install "mint[metrics]"``;
``cider`` (CIDEr over the task's samples, the COCO caption evaluation's scorer, ``pycocoevalcap``,
``pip install "mint[cider]"``); and
``embedding:MODEL`` (cosine of sentence embeddings, :mod:`mint.profiling.embedding_similarity`).

A sample's references are its ``answers`` list where it has one (several references, e.g. five captions),
else its ``answer``. Per-sample metrics take the best reference (max over references: ``exact``, ``f1``,
``embedding``; ROUGE-L by ``score_multi``); BLEU and CIDEr take all references at once, as defined.
A task's score is the mean of its samples' scores (for CIDEr, that mean is the corpus CIDEr).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from mint.errors import MintError
from mint.metrics.answers import exact_match, token_f1
from mint.vocabulary import EMBEDDING, METRICS, known_metric, metric_names

#: the optional package each open-ended metric needs, and the extra that installs it
PACKAGES = {
    "rouge_l": ("rouge-score", "metrics"),
    "bleu": ("sacrebleu", "metrics"),
    "cider": ("pycocoevalcap", "cider"),
}


def metric_label(name: str) -> str:
    """What a metric's score is called in reports (``accuracy``, ``CIDEr``, ``embedding cosine``)."""
    if name.startswith(EMBEDDING):
        return "embedding cosine"
    return METRICS.get(name, (name, ""))[0]


def references(sample: Any) -> list[str]:
    """A sample's references: its ``meta["answers"]`` list (several references) or its ``answer``."""
    refs = (getattr(sample, "meta", None) or {}).get("answers")
    if isinstance(refs, list) and refs:
        return [str(r) for r in refs]
    return [str(sample.answer)]


def check_available(metric: str) -> None:
    """Raise a :class:`MintError` now if ``metric`` needs a package that is not installed (before any
    model work is spent on a task that could not be scored)."""
    if metric in PACKAGES:
        _require(metric)


def _require(metric: str):
    import importlib

    module = {
        "rouge_l": "rouge_score.rouge_scorer",
        "bleu": "sacrebleu",
        "cider": "pycocoevalcap.cider.cider",
    }[metric]
    try:
        return importlib.import_module(module)
    except ImportError:
        package, extra = PACKAGES[metric]
        raise MintError(
            f'metric {metric!r} needs the {package} package (pip install "mint[{extra}]")'
        ) from None


@lru_cache(maxsize=1)
def _rouge_scorer():
    return _require("rouge_l").RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(prediction: str, refs: Sequence[str]) -> float:
    """ROUGE-L F-measure of ``prediction`` against its best reference (``rouge-score``, no stemming, as the
    Hugging Face ``evaluate`` rouge)."""
    return float(_rouge_scorer().score_multi([str(r) for r in refs], str(prediction))["rougeL"].fmeasure)


def bleu(prediction: str, refs: Sequence[str]) -> float:
    """Sentence BLEU of ``prediction`` against all its references, in [0, 1] (``sacrebleu.sentence_bleu``:
    13a tokenizer, exponential smoothing, effective order), i.e. sacrebleu's score / 100."""
    return float(_require("bleu").sentence_bleu(str(prediction), [str(r) for r in refs]).score) / 100.0


_PUNCT = str.maketrans(dict.fromkeys("''\"`.?!,:;-_()[]{}/\\|@#$%^&*+=<>~", " "))


def caption_tokens(text: str) -> str:
    """Lowercased, punctuation removed, words joined by single spaces: the pre-tokenised form CIDEr takes
    (the COCO evaluation's Java PTB tokenizer does this, and more; this stays in Python)."""
    return " ".join(str(text).lower().translate(_PUNCT).split())


def cider(predictions: Sequence[str], refs: Sequence[Sequence[str]]) -> list[float]:
    """Per-sample CIDEr of ``predictions`` against their references, with n-gram document frequencies
    from all the references given (the corpus): pycocoevalcap's ``Cider`` (n = 4, sigma = 6)."""
    cider_mod = _require("cider")
    if len(predictions) < 2:
        raise MintError("metric 'cider' needs at least 2 samples (document frequencies come from the corpus)")
    gts = {i: [caption_tokens(r) for r in rs] for i, rs in enumerate(refs)}
    res = {i: [caption_tokens(p)] for i, p in enumerate(predictions)}
    _, scores = cider_mod.Cider().compute_score(gts, res)
    return [float(s) for s in scores]


def score_samples(metric: str, predictions: Sequence[str], refs: Sequence[Sequence[str]]) -> list[float]:
    """Each prediction's score under ``metric`` against its references (a list per prediction)."""
    if not known_metric(metric):
        raise MintError(f"unknown metric {metric!r} (expected {metric_names()})")
    if len(predictions) != len(refs):
        raise ValueError("score_samples: one list of references per prediction")
    if any(not rs for rs in refs):
        raise MintError("every sample needs at least one reference answer")
    if metric == "cider":
        return cider(predictions, refs)
    if metric == "rouge_l":
        return [rouge_l(p, rs) for p, rs in zip(predictions, refs)]
    if metric == "bleu":
        return [bleu(p, rs) for p, rs in zip(predictions, refs)]
    if metric.startswith(EMBEDDING):
        from mint.profiling.embedding_similarity import embedding_similarity

        sim = embedding_similarity(metric[len(EMBEDDING) :])
        sim.prepare([*map(str, predictions), *(str(r) for rs in refs for r in rs)])
        return [max(sim(p, r) for r in rs) for p, rs in zip(predictions, refs)]
    fn = token_f1 if metric == "f1" else exact_match
    return [max(float(fn(str(p), str(r))) for r in rs) for p, rs in zip(predictions, refs)]


def score_task(task: Any, predictions: Sequence[str], samples: Sequence[Any] | None = None) -> list[float]:
    """Scores of ``predictions`` for ``samples`` (default: the task's test split) under the task's metric."""
    samples = task.test if samples is None else samples
    return score_samples(getattr(task, "metric", "exact"), predictions, [references(s) for s in samples])
