"""Learned-affinity baseline groupings: they look at the backbone, not at the modality profiles.

* ``gradient``: one shared LoRA adapter is trained briefly on all tasks together (``steps`` AdamW steps
  on mixed batches), then each task's mean gradient of the adapter (over its ``max_samples`` samples,
  per answer token) is flattened; tasks are compared by the cosine of these gradients and grouped by
  average-linkage clustering on the cosine distance.
* ``tag``: Task Affinity Grouping (Fifty et al. 2021). During ``steps`` joint training steps of the shared
  adapter, at every step and for every task i, a lookahead SGD step on task i's batch gives
  Z(i->j) = 1 - L_j(after) / L_j(before) on every task j's batch; Z is averaged over the steps,
  symmetrised, and the partition into k groups with the highest within-group affinity is searched
  (:mod:`mint.clustering.tag`: exhaustive up to 10 tasks, local search beyond).
* ``instruction``: each task's embedding is the mean over its samples of the backbone's pooled features
  (``vlm.features``: the text-only pass, i.e. instruction + sample text, and/or the projected image
  tokens); tasks are compared by cosine similarity and grouped by average-linkage clustering.

``k="auto"`` keeps the k in 2..min(8, n-1) with the best silhouette on the method's distance matrix.
The model passed in comes back unchanged: the adapter is injected into ``vlm.model`` only for the duration
of the computation and unloaded afterwards (no merge), with ``requires_grad`` and train/eval modes restored.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object
from scipy.cluster.hierarchy import cut_tree, linkage

from mint.artifacts.grouping import Grouping
from mint.clustering import naming, tag
from mint.clustering.choose_k import choose_k, parse_k
from mint.clustering.distances import condensed
from mint.clustering.methods import AFFINITY_METHODS
from mint.errors import MintError
from mint.models.batching import by_image_count
from mint.models.runner import Shards
from mint.tuning.data import CollateCache, Example, collate_examples, epoch_batches
from mint.tuning.lora import add_lora, answer_loss, lora_config, lora_targets, trainable

METHODS = AFFINITY_METHODS
FEATURES = ("both", "text", "image")
#: options beyond the common ones, with their defaults
OPTIONS: dict[str, Any] = {
    "rank": 8,  # LoRA rank of the shared adapter (gradient, tag)
    "alpha": 16,  # LoRA alpha of the shared adapter
    "tower": "language",  # where the shared adapter goes: language, vision, both (mint.tuning.targets)
    "lookahead_lr": None,  # tag: SGD learning rate of the lookahead step (None: lr)
    "features": "both",  # instruction: text, image, or both (each mean L2-normalised, then concatenated)
    "restarts": tag.RESTARTS,  # tag: local-search restarts beyond tag.EXHAUSTIVE_MAX tasks
}


def affinity_grouping(
    vlm: Any,
    tasks: list[Any],
    method: str,
    k: int | str = "auto",
    *,
    seed: int = 0,
    steps: int = 8,
    batch_size: int = 4,
    lr: float = 1e-3,
    max_samples: int = 16,
    progress: bool = True,
    **opts: Any,
) -> Grouping:
    """Group ``tasks`` by a learned affinity on the backbone ``vlm``; return the groups.json as a :class:`Grouping`.

    method: ``gradient``, ``tag`` or ``instruction`` (see the module docstring). ``k``: ``"auto"``
    (silhouette) or a number of groups 1..len(tasks). ``steps``: AdamW steps of the shared adapter on all
    tasks (``gradient``: warm-up before the gradients are taken, may be 0; ``tag``: the steps whose
    lookahead affinities are averaged, at least 1). ``batch_size``: examples per batch (per task for
    ``tag``). ``lr``: AdamW learning rate (and the lookahead's, unless ``lookahead_lr``). ``max_samples``:
    training samples used per task (a seeded subset). ``opts``: see :data:`OPTIONS`.
    Groups are ``group_0``.. in order of their first task in ``tasks``.
    """
    names = _check_tasks(tasks)
    if method not in METHODS:
        raise MintError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    kk = parse_k(k, len(names), "the suite")
    opt = _options(opts)
    _check_numbers(method, {"steps": steps, "batch_size": batch_size, "max_samples": max_samples}, lr, opt)
    seed = int(seed)
    examples = {t.name: _select(t, max_samples, seed) for t in tasks}
    params: dict[str, Any] = {
        "seed": seed,
        "task_order": names,
        "max_samples": max_samples,
        "samples_used": {n: len(e) for n, e in examples.items()},
        "model": getattr(vlm, "name", "") or "",
        "model_type": getattr(vlm, "model_type", ""),
    }

    if method == "instruction":
        emb = _task_embeddings(vlm, tasks, examples, opt["features"], batch_size, progress)
        sim = _cosine(emb)
        params.update(
            features=opt["features"],
            batch_size=batch_size,
            matrix_kind="cosine similarity of task embeddings (mean pooled backbone features)",
        )
    else:
        lora = {"rank": opt["rank"], "alpha": opt["alpha"], "tower": opt["tower"], "dropout": 0.0}
        params.update(steps=steps, batch_size=batch_size, lr=lr, optimizer="AdamW", lora=lora)
        with shared_adapter(vlm, rank=opt["rank"], alpha=opt["alpha"], tower=opt["tower"], seed=seed) as pm:
            lora["target_modules"] = _target_regex(pm)
            # under torchrun / accelerate launch the per-task passes are split over the processes
            shards = Shards.launched(vlm.device.type)
            probe = Probe(vlm, pm, tasks, examples, batch_size, seed, progress and shards.is_main, shards)
            if method == "gradient":
                _train(probe, steps, lr)
                sim = _cosine(_task_gradients(probe))
                params.update(matrix_kind="cosine similarity of per-task mean LoRA gradients")
            else:
                look = float(opt["lookahead_lr"] if opt["lookahead_lr"] is not None else lr)
                z = lookahead_affinity(probe, steps, lr, look)
                params.update(
                    lookahead_lr=look,
                    lookahead="SGD",
                    matrix_kind="lookahead affinity Z[i][j] = 1 - L_j(after a step on i) / L_j(before)",
                )

    ids = _partition(method, z if method == "tag" else sim, kk, seed, int(opt["restarts"]), params)
    labels = _names(ids)
    return Grouping.of(
        naming.to_groups(names, labels),
        method,
        params,
        assignment=dict(zip(names, labels)),
        stability=None,
    )


def _partition(
    method: str, matrix: np.ndarray, k: int | None, seed: int, restarts: int, params: dict[str, Any]
) -> np.ndarray:
    """The tasks' group ids from the method's matrix, cut into ``k`` groups (None: the k with the best
    silhouette): TAG's best partition of the symmetrised lookahead affinities, else average linkage on
    1 - cosine similarity. What was done is added to ``params``."""
    n = len(matrix)
    if method == "tag":
        sym = tag.symmetrise(matrix)
        dist = _affinity_distance(sym)
        searches: set[str] = set()

        def fit(kk_: int) -> np.ndarray:
            labels, _, search = tag.best_partition(sym, kk_, seed, restarts)
            searches.add(search)
            return labels

        params.update(
            matrix=_rounded(matrix),
            matrix_symmetric=_rounded(sym),
            objective="sum over tasks of the mean symmetrised affinity to its group-mates",
        )
    else:
        dist = np.clip(1.0 - matrix, 0.0, 2.0)
        np.fill_diagonal(dist, 0.0)
        link = linkage(condensed(dist), method="average") if n > 1 else None

        def fit(kk_: int) -> np.ndarray:
            if kk_ == 1 or link is None:
                return np.zeros(n, int)
            return cut_tree(link, n_clusters=kk_).ravel()

        params.update(matrix=_rounded(matrix), distance="1 - cosine similarity", linkage="average")

    if k is None:
        k, sil = choose_k(dist, fit, metric="precomputed")
        params.update(k=k, k_chosen_by="silhouette", silhouette=sil)
    else:
        params.update(k=k, k_chosen_by="user")
    ids = fit(k)
    if method == "tag":
        params.update(
            search=sorted(searches)[0] if searches else "exhaustive",
            score=round(tag.partition_score(sym, ids), 8),
        )
    return ids


# ---------------------------------------------------------------------------------------------- checks
def _check_tasks(tasks: list[Any]) -> list[str]:
    if not tasks:
        raise MintError("no tasks to group")
    names = [t.name for t in tasks]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise MintError(f"task {dup[0]!r} appears more than once in the suite")
    for t in tasks:
        if not list(t.train):
            raise MintError(
                f"task {t.name!r}: no training samples (affinities are measured on the train split)"
            )
    return names


def _check_numbers(method: str, counts: dict[str, Any], lr: Any, opt: dict[str, Any]) -> None:
    """``counts`` (steps, batch size, samples) whole numbers in range for ``method``; the learning rates
    positive."""
    for what, value in counts.items():
        low = 1 if what != "steps" or method == "tag" else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise MintError(f"{what}: expected an integer >= {low} for method {method!r}, got {value!r}")
    for what, value in (
        ("lr", lr),
        ("lookahead_lr", opt["lookahead_lr"] if opt["lookahead_lr"] is not None else lr),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise MintError(f"{what}: expected a positive number, got {value!r}")


def _options(opts: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(opts) - set(OPTIONS))
    if unknown:
        raise MintError(f"unknown option {unknown[0]!r} (options: {', '.join(OPTIONS)})")
    out = {**OPTIONS, **opts}
    if out["features"] not in FEATURES:
        raise MintError(f"features: expected one of {', '.join(FEATURES)}, got {out['features']!r}")
    for what in ("rank", "restarts"):
        v = out[what]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise MintError(f"{what}: expected a positive integer, got {v!r}")
    if isinstance(out["alpha"], bool) or not isinstance(out["alpha"], (int, float)) or out["alpha"] <= 0:
        raise MintError(f"alpha: expected a positive number, got {out['alpha']!r}")
    return out


# ---------------------------------------------------------------------------------------------- data
def _select(task: Any, max_samples: int, seed: int) -> list[Any]:
    """At most ``max_samples`` training examples of ``task``: a subset seeded by ``seed`` alone (tasks with
    the same samples get the same subset), kept in their original order."""
    train = list(task.train)
    if len(train) > max_samples:
        keep = np.sort(np.random.default_rng(seed).choice(len(train), max_samples, replace=False))
        train = [train[int(i)] for i in keep]
    return [Example(task, s) for s in train]


def _chunks(examples: list[Any], batch_size: int) -> list[list[Any]]:
    """Fixed-order batches, examples with different numbers of images never mixed."""
    buckets = by_image_count(examples, lambda ex: ex.n_images)
    return [b[i : i + batch_size] for b in buckets.values() for i in range(0, len(b), batch_size)]


def _batch_stream(examples: list[Any], batch_size: int, seed: int, name: str) -> Iterator[list[Any]]:
    """Endless seeded shuffled batches (epoch after epoch), as :func:`mint.tuning.data.epoch_batches`."""
    epoch = 0
    while True:
        for idx in epoch_batches(examples, batch_size, seed, name, epoch):
            yield [examples[i] for i in idx]
        epoch += 1


# ---------------------------------------------------------------------------------------------- adapter
@contextlib.contextmanager
def shared_adapter(
    vlm: Any, *, rank: int = 8, alpha: float = 16, tower: str = "language", seed: int = 0
) -> Iterator[Any]:
    """Put one fresh, seeded LoRA adapter (peft, no dropout) on ``vlm.model`` for the duration of the block;
    yield the ``PeftModel``. On exit the adapter is unloaded without merging and ``vlm.model``,
    ``requires_grad`` flags and train/eval modes are restored. The global torch RNG is left untouched."""
    from peft import PeftModel
    from peft.tuners.tuners_utils import BaseTunerLayer

    base = vlm.model
    if isinstance(base, PeftModel) or any(isinstance(m, BaseTunerLayer) for m in base.modules()):
        raise MintError("the backbone already carries peft adapters; give a bare model to measure affinities")
    regex = lora_targets(base, tower)
    grads = {n: p.requires_grad for n, p in base.named_parameters()}
    modes = {n: m.training for n, m in base.named_modules()}
    device = next(base.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        peft_model = add_lora(base, "default", lora_config(rank, alpha, 0.0, regex), seed)
    peft_model.eval()
    vlm.model = peft_model
    try:
        yield peft_model
    finally:
        restored = peft_model.unload()
        vlm.model = restored if restored is not None else base
        for n, p in vlm.model.named_parameters():
            p.requires_grad_(grads.get(n, p.requires_grad))
            p.grad = None
        for n, m in vlm.model.named_modules():
            if n in modes:
                m.training = modes[n]


def _target_regex(peft_model: Any) -> str:
    cfg = peft_model.peft_config[peft_model.active_adapter]
    return str(cfg.target_modules)


def _loss(collate: Any, model: Any, batch: list[Any]) -> tuple[torch.Tensor, int]:
    """Summed answer-token cross-entropy of ``batch`` (examples) and the number of answer tokens."""
    return answer_loss(model, collate(batch))


def _bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", disable=not progress, leave=False)


@dataclass(frozen=True)
class Probe:
    """What the learned affinities are measured with: the backbone ``vlm`` carrying the shared adapter
    (``model``), the tasks and each task's examples, the batch size, the seed of the batch streams and
    whether to show progress."""

    vlm: Any
    model: Any
    tasks: list[Any]
    examples: dict[str, list[Any]]
    batch_size: int
    seed: int
    progress: bool = False
    #: the processes the per-task passes are split over (torchrun / accelerate launch; one by default)
    shards: Shards = field(default_factory=Shards)

    def mine(self, n: int) -> list[int]:
        """The task indices this process computes: every ``count``-th from its own index."""
        return list(range(self.shards.index, n, self.shards.count))


def _train(probe: Probe, steps: int, lr: float) -> None:
    """``steps`` AdamW steps of the shared adapter on seeded mixed batches of all tasks' examples."""
    if steps == 0:
        return
    pooled = [ex for t in probe.tasks for ex in probe.examples[t.name]]
    stream = _batch_stream(pooled, probe.batch_size, probe.seed, "affinity/warm-up")
    params = trainable(probe.model)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    collate = CollateCache(probe.vlm)  # warm-up batches come back epoch after epoch
    with _bar(steps, "affinity warm-up", probe.progress) as bar:
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss, n = _loss(collate, probe.model, next(stream))
            (loss / max(n, 1)).backward()
            opt.step()
            bar.update(1)
    opt.zero_grad(set_to_none=True)


def _task_gradients(probe: Probe) -> np.ndarray:
    """(n_tasks, n_adapter_params): each task's gradient of its mean answer-token loss over its examples."""
    params, tasks = trainable(probe.model), probe.tasks
    collate = functools.partial(collate_examples, probe.vlm)  # each example once: nothing to keep
    rows = {}
    mine = probe.mine(len(tasks))
    with _bar(len(mine), "task gradients", probe.progress) as bar:
        for i in mine:
            t = tasks[i]
            for p in params:
                p.grad = None
            tokens = 0
            for batch in _chunks(probe.examples[t.name], probe.batch_size):
                loss, n = _loss(collate, probe.model, batch)
                loss.backward()
                tokens += n
            if tokens == 0:
                raise MintError(f"task {t.name!r}: its answers give no tokens to compute a loss on")
            flat = (
                torch.cat(
                    [
                        (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float()
                        for p in params
                    ]
                )
                / tokens
            )
            rows[i] = flat.cpu().numpy()  # float32: n_tasks x adapter size stays small on CPU
            bar.update(1)
    for p in params:
        p.grad = None
    if probe.shards.count > 1:  # every process gets every task's row (each computed by one process)
        rows = {i: r for part in gather_object([rows]) for i, r in part.items()}
    return np.stack([rows[i] for i in range(len(tasks))])


def lookahead_affinity(probe: Probe, steps: int, lr: float, lookahead_lr: float) -> np.ndarray:
    """TAG's inter-task affinity Z[i, j] = 1 - L_j(theta - lookahead_lr * grad L_i) / L_j(theta), averaged
    over ``steps`` joint AdamW steps of the probe model's trainable (adapter) parameters.

    At each step every task draws one batch (seeded, per task); the losses are the mean answer-token
    cross-entropy on those batches. The joint step uses the gradient of the mean loss over all tasks'
    answer tokens (the lookahead gradients, weighted by token counts, so no extra backward pass)."""
    model, tasks = probe.model, probe.tasks
    params = trainable(model)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    streams = {
        t.name: _batch_stream(probe.examples[t.name], probe.batch_size, probe.seed, "affinity/tag")
        for t in tasks
    }
    collate = CollateCache(probe.vlm)  # every batch is scored 2 + n times a step, and comes back each epoch
    n = len(tasks)
    z = np.zeros((n, n))  # in a split run, each process fills only its own tasks' rows until the sum
    with _bar(steps, "task affinity", probe.progress) as bar:
        for _ in range(steps):
            batches = [next(streams[t.name]) for t in tasks]
            with torch.no_grad():
                before = [_mean_loss(collate, model, b) for b in batches]
            snapshot = [p.detach().clone() for p in params]
            joint = [torch.zeros_like(p) for p in params]
            total_tokens = 0
            for i in probe.mine(n):  # the lookahead from each task starts from the same parameters
                b = batches[i]
                for p in params:
                    p.grad = None
                loss, ntok = _loss(collate, model, b)
                (loss / max(ntok, 1)).backward()
                total_tokens += ntok
                with torch.no_grad():
                    for p, acc in zip(params, joint):
                        if p.grad is not None:
                            acc.add_(p.grad, alpha=float(ntok))
                            p.sub_(lookahead_lr * p.grad)
                    after = [_mean_loss(collate, model, bj) for bj in batches]
                    for p, saved in zip(params, snapshot):
                        p.copy_(saved)
                for j in range(n):
                    z[i, j] += 1.0 - after[j] / before[j] if before[j] > 0 else 0.0
            if probe.shards.count > 1:  # the processes' lookahead rows and joint gradients, summed
                total_tokens = _sum_across(probe, joint, z, total_tokens)
            for p, acc in zip(params, joint):
                p.grad = acc / max(total_tokens, 1)
            opt.step()
            bar.update(1)
    for p in params:
        p.grad = None
    return z / steps


def _sum_across(probe: Probe, joint: list[torch.Tensor], z: np.ndarray, tokens: int) -> int:
    """Sum, over the processes, each one's joint-gradient share (in place) and its rows of this step's
    affinities (in place, ``z`` holding the running sum of earlier steps once), and the token counts."""
    import torch.distributed as dist

    device = joint[0].device if joint else torch.device("cpu")
    for acc in joint:
        dist.all_reduce(acc)
    own = torch.zeros(z.shape, dtype=torch.float64, device=device)
    rows = probe.mine(z.shape[0])
    own[rows] = torch.as_tensor(z[rows], dtype=torch.float64, device=device)
    dist.all_reduce(own)
    z[:] = own.cpu().numpy()
    count = torch.tensor([tokens], dtype=torch.float64, device=device)
    dist.all_reduce(count)
    return int(count.item())


def _mean_loss(collate: Any, model: Any, batch: list[Any]) -> float:
    loss, n = _loss(collate, model, batch)
    return float(loss) / max(n, 1)


# ---------------------------------------------------------------------------------------------- features
def _task_embeddings(
    vlm: Any, tasks: list[Any], examples: dict[str, list[Any]], features: str, batch_size: int, progress: bool
) -> np.ndarray:
    """One vector per task: the mean over its examples of ``vlm.features`` (``text``, ``image``, or both,
    each mean L2-normalised and concatenated)."""
    from tqdm.auto import tqdm

    rows = []
    for t in tqdm(tasks, desc="task embeddings", unit="task", disable=not progress, leave=False):
        f = vlm.features(t, [ex.sample for ex in examples[t.name]], batch_size=batch_size)
        parts = []
        for key in ("text", "image") if features == "both" else (features,):
            mean = np.asarray(f[key], np.float64).mean(axis=0)
            norm = np.linalg.norm(mean)
            parts.append(mean / norm if (features == "both" and norm > 0) else mean)
        rows.append(np.concatenate(parts))
    return np.stack(rows)


# ---------------------------------------------------------------------------------------------- grouping
def _cosine(x: np.ndarray) -> np.ndarray:
    """Cosine similarity between rows (diagonal 1); a zero row has similarity 0 to every other row."""
    x = np.asarray(x)
    x = x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)
    if not np.isfinite(x).all():
        raise MintError("task vectors contain NaN or infinite values (the loss diverged?)")
    norms = np.linalg.norm(x, axis=1)
    u = x / np.where(norms > 0, norms, 1.0).astype(x.dtype)[:, None]
    sim = np.clip((u @ u.T).astype(np.float64), -1.0, 1.0)
    np.fill_diagonal(sim, 1.0)
    return sim


def _affinity_distance(sym: np.ndarray) -> np.ndarray:
    """A distance for the silhouette from a symmetric affinity: max off-diagonal affinity minus affinity."""
    n = len(sym)
    if n < 2:
        return np.zeros((n, n))
    off = sym[~np.eye(n, dtype=bool)]
    d = np.maximum(off.max() - sym, 0.0)
    np.fill_diagonal(d, 0.0)
    return d


def _names(ids: np.ndarray) -> list[str]:
    """``group_0``.. in order of first appearance in the task order."""
    order = {c: i for i, c in enumerate(dict.fromkeys(np.asarray(ids).tolist()))}
    return [f"group_{order[c]}" for c in np.asarray(ids).tolist()]


def _rounded(m: np.ndarray) -> list[list[float]]:
    return np.round(np.asarray(m, float), 8).tolist()
