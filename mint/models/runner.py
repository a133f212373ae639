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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mint.errors import MintError
from mint.io import atomic_path, atomic_write_json, dumps_json, stamp
from mint.models.prompts import MODES


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


def model_setting(vlm: Any, spec: str, source: str, dtype: str) -> dict[str, Any]:
    """What determines the predictions besides the samples: recorded in ``model.json`` and the key."""
    setting = {
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
            atomic_write_json(meta, stamp({"setting": setting}))

    def _path(self, task: str, part: str, ext: str) -> Path:
        return self.dir / f"{_safe(task)}.{part}.{ext}"

    def get_predictions(self, task: str, mode: str, fingerprint: str) -> list[str] | None:
        path = self._path(task, mode, "json")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data["predictions"] if data.get("fingerprint") == fingerprint else None

    def put_predictions(
        self, task: str, mode: str, fingerprint: str, ids: list[str], preds: list[str]
    ) -> None:
        atomic_write_json(
            self._path(task, mode, "json"),
            {"fingerprint": fingerprint, "ids": ids, "predictions": preds},
            indent=None,
        )

    def get_features(self, task: str, fingerprint: str) -> dict[str, np.ndarray] | None:
        path = self._path(task, "features", "npz")
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["fingerprint"]) != fingerprint:
                    return None
                return {k: z[k] for k in ("image", "text")}
        except (OSError, ValueError, KeyError):
            return None

    def put_features(self, task: str, fingerprint: str, feats: dict[str, np.ndarray]) -> None:
        with atomic_path(self._path(task, "features", "npz")) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, fingerprint=np.array(fingerprint), image=feats["image"], text=feats["text"])


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
) -> tuple[list[dict], dict[str, int]]:
    """Predict every task in every mode (reusing cached parts); return the predictions records and counts
    of parts computed and reused.

    ``in_context`` > 0: every prompt carries that many demonstrations from the task's train split
    (:mod:`mint.tasks.demos`); the setting and the train split are part of the predictions' cache key.
    Features are always computed without demonstrations."""
    from mint.tasks.demos import in_context_setting, task_demos

    rows: list[dict] = []
    counts = {"computed": 0, "cached": 0}
    for task in tasks:
        samples = list(task.split(split)) if hasattr(task, "split") else list(getattr(task, split))
        if not samples:
            raise MintError(f"task {task.name!r}: no {split} samples to predict")
        fp = task_fingerprint(task, samples)
        ids = [str(s.id) for s in samples]
        preds: dict[str, list[str]] = {}
        demos = task_demos(task, in_context, demo_selection, demo_seed)
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
        for mode in modes:
            got = cache.get_predictions(task.name, parts[mode], pred_fp)
            if got is not None:
                preds[mode] = got
                counts["cached"] += 1
        missing = [m for m in modes if m not in preds]
        if missing:  # the missing modes together: each image decoded and processed once for all of them
            new = vlm.predict_modes(
                task, samples, missing, batch_size=batch_size, progress=progress, demos=demos
            )
            for mode in missing:
                cache.put_predictions(task.name, parts[mode], pred_fp, ids, new[mode])
                preds[mode] = new[mode]
                counts["computed"] += 1
        feats = None
        if features:
            feats = cache.get_features(task.name, fp)
            if feats is None:
                feats = vlm.features(task, samples, batch_size=batch_size, progress=progress)
                cache.put_features(task.name, fp, feats)
                counts["computed"] += 1
            else:
                counts["cached"] += 1
        if log:
            log(f"{task.name}: {len(samples)} samples")
        for j, s in enumerate(samples):
            row: dict[str, Any] = {
                "task": task.name,
                "id": ids[j],
                "answer": str(s.answer),
                "predictions": {m: preds[m][j] for m in modes},
            }
            if feats is not None:
                row["features"] = {
                    m: np.round(feats[m][j].astype(np.float64), 5).tolist() for m in ("image", "text")
                }
            rows.append(row)
    return rows, counts


def write_predictions(path: str | Path, rows: list[dict], meta: dict[str, Any]) -> Path:
    """Write the predictions JSONL and its sidecar ``<path>.meta.json`` (both atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(dumps_json(r, indent=None))
    atomic_write_json(meta_path(path), stamp(meta))
    return path


def meta_path(path: str | Path) -> Path:
    """The metadata sidecar of a predictions file: ``preds.jsonl`` -> ``preds.jsonl.meta.json``."""
    path = Path(path)
    return path.with_name(path.name + ".meta.json")
