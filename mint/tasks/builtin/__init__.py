"""Built-in task suites from real data that installs from PyPI (easy-VQA, scikit-learn digits).

``builtin:default`` (10 tasks, at most 200 train / 100 test samples each), ``builtin:mini`` (the same
tasks, 40 / 20) and ``builtin:full`` (everything available); ``builtin:<task>`` is one task, any of the
default suite's or of ``EXTRA_TASKS`` (built-in tasks outside the default suite).
"""

from mint.tasks.builtin.default import (
    BUILTIN_SUITES,
    BUILTIN_TASKS,
    DEFAULT_CAPS,
    DEFAULT_TASKS,
    EXTRA_TASKS,
    build_suite,
    build_task,
)

__all__ = [
    "BUILTIN_SUITES",
    "BUILTIN_TASKS",
    "DEFAULT_CAPS",
    "DEFAULT_TASKS",
    "EXTRA_TASKS",
    "build_suite",
    "build_task",
]
