"""Tasks and task suites: the sample schema, suite files (JSONL + image folder, Hugging Face datasets)
and the built-in suites made from easy-VQA and scikit-learn's digits.

>>> tasks = load_suite("builtin:mini")           # or "builtin:default", or "path/to/suite.yaml"
"""

from __future__ import annotations

import os

from mint.benchmarks import SUITE_PREFIX, suite_path
from mint.errors import MintError
from mint.tasks.builtin import BUILTIN_SUITES, BUILTIN_TASKS, build_suite, build_task
from mint.tasks.builtin.audio import AUDIO_SUITES, AUDIO_TASKS, build_audio_suite, build_audio_task
from mint.tasks.builtin.generated import capped
from mint.tasks.builtin.video import VIDEO_SUITES, VIDEO_TASKS, build_video_suite, build_video_task
from mint.tasks.schema import KINDS, METRICS, ArrayImage, FileImage, ImageSource, Sample, Task
from mint.tasks.suite import load_suite_file
from mint.tasks.vocab import suite_vocabulary, words

BUILTIN_PREFIX = "builtin:"


def check_builtin(spec: str) -> None:
    """Refuse a ``builtin:`` name that is no built-in suite or task, listing those there are."""
    name = spec[len(BUILTIN_PREFIX) :]
    suites = [*BUILTIN_SUITES, *VIDEO_SUITES, *AUDIO_SUITES]
    tasks = [*BUILTIN_TASKS, *VIDEO_TASKS, *AUDIO_TASKS]
    if name not in (*suites, *tasks):
        raise MintError(
            f"unknown built-in suite {spec!r} (suites: {', '.join(suites)}; tasks: {', '.join(tasks)})"
        )


def load_suite(
    spec: str | os.PathLike, *, seed: int = 0, max_train: int | None = None, max_test: int | None = None
) -> list[Task]:
    """Load a task suite.

    ``spec`` is ``builtin:default`` (the embedded suite: 10 tasks, at most 200 train / 100 test samples
    each), ``builtin:mini`` (40 / 20), ``builtin:full`` (all samples), ``builtin:video`` /
    ``builtin:video-mini`` (the generated video suite, :mod:`mint.tasks.builtin.video`), ``builtin:audio`` /
    ``builtin:audio-mini`` (the generated audio suite, :mod:`mint.tasks.builtin.audio`),
    ``builtin:<task>`` (one built-in task), or the path of a suite ``.yaml`` / ``.json`` file. ``max_train`` / ``max_test`` cap every task
    (for built-in suites they replace the suite's caps, so they can also raise them); sampling is
    deterministic for a ``seed``. Bad input raises :class:`~mint.errors.MintError`.
    """
    for cap, what in ((max_train, "max_train"), (max_test, "max_test")):
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
            raise MintError(f"{what} must be a non-negative integer, got {cap!r}")
    if isinstance(spec, str) and spec.startswith(BUILTIN_PREFIX):
        name = spec[len(BUILTIN_PREFIX) :]
        if name in BUILTIN_SUITES:
            return build_suite(name, seed=seed, max_train=max_train, max_test=max_test)
        if name in VIDEO_SUITES:
            return build_video_suite(name, seed=seed, max_train=max_train, max_test=max_test)
        if name in AUDIO_SUITES:
            return build_audio_suite(name, seed=seed, max_train=max_train, max_test=max_test)
        limits = (max_train, max_test)
        if name in AUDIO_TASKS:
            return capped(build_audio_task, [name], AUDIO_SUITES["audio"][1:], seed, limits)
        if name in VIDEO_TASKS:  # one task at the size it has in its suite
            return capped(build_video_task, [name], VIDEO_SUITES["video"][1:], seed, limits)
        if name in BUILTIN_TASKS:
            return capped(build_task, [name], BUILTIN_SUITES["default"][1:], seed, limits)
        check_builtin(spec)
    if isinstance(spec, str) and spec.startswith(SUITE_PREFIX):
        spec = suite_path(spec)
    return load_suite_file(spec, seed=seed, max_train=max_train, max_test=max_test)


__all__ = [
    "check_builtin",
    "KINDS",
    "METRICS",
    "ArrayImage",
    "FileImage",
    "ImageSource",
    "MintError",
    "Sample",
    "Task",
    "load_suite",
    "suite_vocabulary",
    "words",
]
