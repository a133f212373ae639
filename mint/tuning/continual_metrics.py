"""Continual-tuning metrics from a stage x task accuracy matrix (pure functions, no model).

``A[s][j]`` is the accuracy on task ``j`` after training stage ``s`` (``None`` while task ``j`` is unseen),
``stage_of[j]`` the stage that trains task ``j``; a stage may train several tasks (a group). With ``T``
stages (0-based ``T - 1`` is the last) and ``s_j = stage_of[j]``:

- fine-tune accuracy: mean over tasks of ``A[s_j][j]`` (each task right after its own stage);
- final accuracy: mean over tasks of ``A[T-1][j]``;
- average accuracy: mean over stages ``s`` of the mean of ``A[s][j]`` over the tasks seen so far (``s_j <= s``);
- backward transfer: mean over the tasks not trained in the last stage of ``A[T-1][j] - A[s_j][j]``
  (``1/(T-1) sum_{i<T} (A[T,i] - A[i,i])`` when every stage trains one task);
- forgetting: mean over the same tasks of ``max_{s_j <= s < T-1} A[s][j] - A[T-1][j]`` (best earlier accuracy
  minus final; negative when a task ends better than it ever was).

Backward transfer and forgetting are ``None`` with a single stage (no earlier task).
"""

from __future__ import annotations

from collections.abc import Sequence

from mint.errors import MintError

Matrix = Sequence[Sequence[float | None]]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def check_matrix(matrix: Matrix, stage_of: Sequence[int]) -> int:
    """Check shape and nulls (a value exactly where the task has been seen); returns the number of stages."""
    n_stages, n_tasks = len(matrix), len(stage_of)
    if n_stages == 0:
        raise MintError("continual metrics: the accuracy matrix has no stages")
    for j, s in enumerate(stage_of):
        if not 0 <= s < n_stages:
            raise MintError(f"continual metrics: task {j} is trained in stage {s}, outside 0..{n_stages - 1}")
    for s, row in enumerate(matrix):
        if len(row) != n_tasks:
            raise MintError(f"continual metrics: stage {s} has {len(row)} accuracies for {n_tasks} tasks")
        for j, v in enumerate(row):
            seen = stage_of[j] <= s
            if seen and v is None:
                raise MintError(f"continual metrics: stage {s}, task {j}: no accuracy for a seen task")
            if not seen and v is not None:
                raise MintError(f"continual metrics: stage {s}, task {j}: an accuracy for an unseen task")
    return n_stages


def continual_metrics(matrix: Matrix, stage_of: Sequence[int]) -> dict[str, float | None]:
    """The five standard metrics of ``matrix`` (see the module docstring)."""
    n_stages = check_matrix(matrix, stage_of)
    last = n_stages - 1
    tasks = range(len(stage_of))
    earlier = [j for j in tasks if stage_of[j] < last]
    per_stage = [_mean([matrix[s][j] for j in tasks if stage_of[j] <= s]) for s in range(n_stages)]
    return {
        "fine_tune_accuracy": _mean([matrix[stage_of[j]][j] for j in tasks]),
        "final_accuracy": _mean([matrix[last][j] for j in tasks]),
        "average_accuracy": _mean([v for v in per_stage if v is not None]),
        "backward_transfer": _mean([matrix[last][j] - matrix[stage_of[j]][j] for j in earlier])
        if earlier
        else None,
        "forgetting": _mean(
            [max(matrix[s][j] for s in range(stage_of[j], last)) - matrix[last][j] for j in earlier]
        )
        if earlier
        else None,
    }
