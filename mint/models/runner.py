"""Running a model over a suite in the three modality modes, cached per (model, task, mode).

The cache folder holds one sub-folder per model setting (model, dtype, ablation, generation length), keyed
by a short hash and described by its ``model.json``; inside, ``<task>.<mode>.json`` holds the predictions
of one task in one mode (``<task>.<mode>.in-context-<K>-<selection>.json`` with demonstrations) and
``<task>.features.npz`` its features, each tagged with a fingerprint of the
task's samples. Each part is written atomically as soon as it is done, so a killed run resumes where it
stopped and a re-run with the same inputs does no model work at all.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mint.errors import MintError
from mint.io import atomic_path, atomic_write_json, stamp
from mint.models.batching import CHUNK_BATCHES
from mint.models.devices import resolve_device
from mint.models.prompts import MODES
from mint.tasks.audio import audio_id
from mint.tasks.demos import in_context_setting, task_demos
from mint.tasks.video import video_id, visual_modality


def parse_modes(value: str | Sequence[str]) -> list[str]:
    """``"both,image,text"`` -> the list, validated (no repeats, known names)."""
    items = [m.strip() for m in (value.split(",") if isinstance(value, str) else value) if m.strip()]
    bad = [m for m in items if m not in MODES]
    if not items or bad or len(set(items)) != len(items):
        raise MintError(f"--modes: expected a comma-separated subset of {','.join(MODES)}, got {value!r}")
    return items


def _hash(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def weights_id(source: str) -> list:
    """Names, sizes and mtimes of a local model folder's weight files (a cached id: the id itself)."""
    path = Path(source)
    if not path.is_dir():
        return [source]
    return [
        [p.name, p.stat().st_size, int(p.stat().st_mtime)]
        for p in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin"))
    ]


def model_setting(
    vlm: Any, spec: str, source: str, dtype: str, load: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What determines the predictions besides the samples: recorded in ``model.json`` and the key.
    ``load``: the loading options (:meth:`~mint.models.load_options.LoadOptions.record`); only those
    besides the dtype enter the key, so caches made before they existed stay valid."""
    extra = {k: v for k, v in (load or {}).items() if k != "dtype"}
    setting = {
        **({"load": extra} if extra else {}),
        "model": spec,
        "source": source,
        "weights": weights_id(source),
        "model_type": vlm.model_type,
        "dtype": dtype,
        "ablation": vlm.ablation_settings(),
        "max_new_tokens": vlm.max_new_tokens,
    }
    if getattr(vlm, "num_beams", 1) != 1:  # greedy settings keep the cache keys they always had
        setting["num_beams"] = vlm.num_beams
    return setting


def _image_id(sample: Any) -> str:
    if getattr(sample, "has_video", False):
        return video_id(sample)
    if getattr(sample, "has_audio", False):
        return audio_id(sample)
    path = getattr(sample, "image_path", None)
    if path:
        return path
    img = sample.image
    if img is None:
        return ""
    return hashlib.sha1(img.tobytes()).hexdigest() + f"{img.size}"


def task_fingerprint(task: Any, samples: Sequence[Any]) -> str:
    """A hash of what the model sees of a task: instruction, answer set, sample ids, texts, images."""
    return _hash(
        {
            "name": task.name,
            "instruction": task.instruction,
            "answers": task.answers,
            "samples": [[s.id, s.text, s.answer, _image_id(s)] for s in samples],
        }
    )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class PredictionCache:
    """The cached parts of one model setting under ``root``."""

    def __init__(self, root: str | Path, setting: dict[str, Any]) -> None:
        self.dir = Path(root) / _hash(setting)
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "model.json"
        if not meta.is_file():
            atomic_write_json(meta, stamp({"setting": setting}), replace=True)

    def _path(self, task: str, part: str, ext: str) -> Path:
        return self.dir / f"{_safe(task)}.{part}.{ext}"

    def get_predictions(self, task: str, mode: str, fingerprint: str, with_ids: bool = False) -> Any:
        """The cached predictions of ``task`` in ``mode`` (``(ids, predictions)`` with ``with_ids``), or
        None when absent or made for other samples."""
        path = self._path(task, mode, "json")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return None  # missing, truncated or damaged: computed again
        if not isinstance(data, dict) or not isinstance(data.get("predictions"), list):
            return None
        if data.get("fingerprint") != fingerprint:
            return None
        return (data["ids"], data["predictions"]) if with_ids else data["predictions"]

    def put_predictions(
        self, task: str, mode: str, fingerprint: str, ids: list[str], preds: list[str]
    ) -> None:
        atomic_write_json(
            self._path(task, mode, "json"),
            {"fingerprint": fingerprint, "ids": ids, "predictions": preds},
            indent=None,
            replace=True,
        )

    def get_features(
        self, task: str, fingerprint: str, part: str = "features"
    ) -> dict[str, np.ndarray] | None:
        path = self._path(task, part, "npz")
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["fingerprint"]) != fingerprint:
                    return None
                return {k: z[k] for k in ("image", "text")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None  # missing, truncated or damaged: computed again

    def put_features(
        self, task: str, fingerprint: str, feats: dict[str, np.ndarray], part: str = "features"
    ) -> None:
        with atomic_path(self._path(task, part, "npz"), replace=True) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, fingerprint=np.array(fingerprint), image=feats["image"], text=feats["text"])


class Shards:
    """The processes of an ``accelerate launch`` / ``torchrun`` run (one process: index 0 of 1).

    Samples are split per task into contiguous blocks of whole chunks (the unit ``predict_modes`` batches
    over), so each batch holds the same samples as in a one-process run and the merged predictions are the
    same bytes on CPU."""

    def __init__(self, index: int = 0, count: int = 1, state: Any = None) -> None:
        self.index, self.count, self.state = index, count, state

    @classmethod
    def launched(cls, device: str = "auto") -> Shards:
        """The processes this one belongs to: those of ``accelerate launch`` / ``torchrun``, or itself
        (``device``: what ``--device`` asks for, which decides gloo on CPUs or the GPUs' backend)."""
        if _world_size() <= 1:
            return cls()
        from datetime import timedelta

        from accelerate import PartialState

        cpu = resolve_device(device).type == "cpu"
        # a shard waits for the slowest one before the merge: allow long model runs (the default is 30 min)
        state = PartialState(cpu=cpu, timeout=timedelta(hours=24))
        return cls(state.process_index, state.num_processes, state)

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def ranges(self, n: int, chunk: int) -> list[tuple[int, int]]:
        """Each process's ``[start, stop)`` of ``n`` samples: contiguous blocks of whole chunks."""
        chunks = -(-n // chunk)
        bounds = [min(n, (i * chunks // self.count) * chunk) for i in range(self.count + 1)]
        return [(bounds[i], bounds[i + 1]) for i in range(self.count)]

    def wait(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()

    def total(self, counts: dict[str, int]) -> dict[str, int]:
        """``counts`` summed over the processes."""
        if self.state is None:
            return counts
        from accelerate.utils import gather_object

        every = gather_object([counts])
        return {k: sum(c[k] for c in every) for k in counts}


def _world_size() -> int:
    import os

    value = os.environ.get("WORLD_SIZE", "")
    return int(value) if value.isdigit() else 1


def predict_suite(
    vlm: Any,
    tasks: Sequence[Any],
    cache: PredictionCache,
    *,
    modes: Sequence[str] = MODES,
    split: str = "test",
    batch_size: int = 8,
    features: bool = True,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    in_context: int = 0,
    demo_selection: str = "random",
    demo_seed: int = 0,
    shards: Shards | None = None,
) -> tuple[list[dict], dict[str, int]]:
    """Predict every task in every mode (reusing cached parts); return the predictions records and counts
    of parts computed and reused.

    ``in_context`` > 0: every prompt carries that many demonstrations from the task's train split
    (:mod:`mint.tasks.demos`); the setting and the train split are part of the predictions' cache key.
    Features are always computed without demonstrations.

    Under several processes (``shards``), each computes its block of every task's samples into cache parts
    ``<task>.<mode>.rows-<start>-<stop>.json`` (features likewise); once all are done the main process merges
    them into the whole-task parts and returns the records (the other processes return none). A killed
    process's block is the only work a relaunch does."""

    shards = shards or Shards()
    counts = {"computed": 0, "cached": 0}
    plans = []
    for task in tasks:
        samples = list(task.split(split)) if hasattr(task, "split") else list(getattr(task, split))
        if not samples:
            raise MintError(f"task {task.name!r}: no {split} samples to predict")
        fp = task_fingerprint(task, samples)
        pred_fp = (
            fp
            if not in_context
            else _hash(
                [
                    fp,
                    in_context_setting(in_context, demo_selection, demo_seed),
                    task_fingerprint(task, task.train),
                ]
            )
        )
        parts = {
            m: m if not in_context else f"{m}.in-context-{in_context}-{demo_selection}"  # K=0 kept too
            for m in modes
        }
        ranges = shards.ranges(len(samples), batch_size * CHUNK_BATCHES) if shards.count > 1 else []
        plans.append((task, samples, fp, pred_fp, parts, ranges))
        job = dict(task=task, samples=samples, fp=fp, pred_fp=pred_fp, parts=parts, modes=modes)
        opts = dict(
            batch_size=batch_size,
            features=features,
            progress=progress,
            counts=counts,
            in_context=in_context,
            demo_selection=demo_selection,
            demo_seed=demo_seed,
        )
        if not ranges:
            _predict_part(vlm, cache, job, None, **opts)
        elif not _whole_cached(cache, job, features):
            start, stop = ranges[shards.index]
            if stop > start:
                _predict_part(vlm, cache, job, (start, stop), **opts)
        if log:
            log(f"{task.name}: {len(samples)} samples")
    shards.wait()
    counts = shards.total(counts)
    if not shards.is_main:
        return [], counts
    rows: list[dict] = []
    for task, samples, fp, pred_fp, parts, ranges in plans:
        if ranges:
            _merge(cache, task.name, fp, pred_fp, parts, ranges, features)
        ids = [str(s.id) for s in samples]
        preds = {m: cache.get_predictions(task.name, parts[m], pred_fp) for m in modes}
        feats = cache.get_features(task.name, fp) if features else None
        if any(p is None for p in preds.values()) or (features and feats is None):
            raise MintError(f"{cache.dir}: the cached parts of task {task.name!r} vanished while predicting")
        named = {"image": visual_modality(task)}  # "video" / "audio" for a video / audio task
        for j, s in enumerate(samples):
            row: dict[str, Any] = {
                "task": task.name,
                "id": ids[j],
                "answer": str(s.answer),
                "predictions": {named.get(m, m): preds[m][j] for m in modes},
            }
            if feats is not None:
                row["features"] = {
                    named.get(m, m): np.round(feats[m][j].astype(np.float64), 5).tolist()
                    for m in ("image", "text")
                }
            rows.append(row)
    return rows, counts


def _rows_part(part: str, rows: tuple[int, int] | None) -> str:
    return part if rows is None else f"{part}.rows-{rows[0]}-{rows[1]}"


def _whole_cached(cache: PredictionCache, job: dict[str, Any], features: bool) -> bool:
    name = job["task"].name
    return all(
        cache.get_predictions(name, job["parts"][m], job["pred_fp"]) is not None for m in job["modes"]
    ) and (not features or cache.get_features(name, job["fp"]) is not None)


def _predict_part(
    vlm: Any,
    cache: PredictionCache,
    job: dict[str, Any],
    rows: tuple[int, int] | None,
    *,
    batch_size: int,
    features: bool,
    progress: bool,
    counts: dict[str, int],
    in_context: int,
    demo_selection: str,
    demo_seed: int,
) -> None:
    """Predict samples ``rows`` (all: None) of one task in the modes not cached yet, and their features."""

    task, modes, pred_fp, fp = job["task"], job["modes"], job["pred_fp"], job["fp"]
    samples = job["samples"] if rows is None else job["samples"][rows[0] : rows[1]]
    ids = [str(s.id) for s in samples]
    names = {m: _rows_part(job["parts"][m], rows) for m in modes}
    missing = []
    for mode in modes:
        if cache.get_predictions(task.name, names[mode], pred_fp) is not None:
            counts["cached"] += 1
        else:
            missing.append(mode)
    if missing:  # the missing modes together: each image decoded and processed once for all of them
        demos = task_demos(task, in_context, demo_selection, demo_seed)
        new = vlm.predict_modes(task, samples, missing, batch_size=batch_size, progress=progress, demos=demos)
        for mode in missing:
            cache.put_predictions(task.name, names[mode], pred_fp, ids, new[mode])
            counts["computed"] += 1
    if features:
        part = _rows_part("features", rows)
        if cache.get_features(task.name, fp, part) is None:
            cache.put_features(
                task.name, fp, vlm.features(task, samples, batch_size=batch_size, progress=progress), part
            )
            counts["computed"] += 1
        else:
            counts["cached"] += 1


def _merge(
    cache: PredictionCache,
    task: str,
    fp: str,
    pred_fp: str,
    parts: dict[str, str],
    ranges: list[tuple[int, int]],
    features: bool,
) -> None:
    """Join the processes' row blocks of ``task`` into its whole-task parts and remove the blocks."""
    blocks = [r for r in ranges if r[1] > r[0]]
    done: list[Path] = []
    for part in parts.values():
        if cache.get_predictions(task, part, pred_fp) is not None:
            continue
        got = [cache.get_predictions(task, _rows_part(part, r), pred_fp, with_ids=True) for r in blocks]
        if any(g is None for g in got):
            raise MintError(f"{cache.dir}: a process did not write its part of task {task!r} ({part})")
        cache.put_predictions(
            task, part, pred_fp, [i for g in got for i in g[0]], [p for g in got for p in g[1]]
        )
        done += [cache._path(task, _rows_part(part, r), "json") for r in blocks]
    if features and cache.get_features(task, fp) is None:
        got = [cache.get_features(task, fp, _rows_part("features", r)) for r in blocks]
        if any(g is None for g in got):
            raise MintError(f"{cache.dir}: a process did not write its features of task {task!r}")
        cache.put_features(task, fp, {m: np.concatenate([g[m] for g in got]) for m in ("image", "text")})
        done += [cache._path(task, _rows_part("features", r), "npz") for r in blocks]
    for path in done:
        path.unlink(missing_ok=True)
