"""Word-level vocabulary of a suite, for word-level tokenizers (the embedded tiny backbone)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from mint.tasks.schema import Task

_WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """Lowercase words with punctuation split off: ``"What color?"`` -> ``["what", "color", "?"]``."""
    return _WORD.findall(text.lower())


def suite_vocabulary(tasks: Iterable[Task]) -> set[str]:
    """Every word of the tasks' instructions, sample texts, answers, answer sets and choices."""
    vocab: set[str] = set()
    for task in tasks:
        vocab.update(words(task.instruction))
        for a in task.answers or ():
            vocab.update(words(a))
        for s in task.samples:
            vocab.update(words(s.text))
            vocab.update(words(s.answer))
            for c in s.meta.get("choices", ()):
                vocab.update(words(c))
    return vocab
