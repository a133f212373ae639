"""Sample loaders for user tasks: a JSONL file with an image folder, or a Hugging Face dataset.

JSONL record: ``{"id": "17", "image": "relative/path.png", "text": "question", "answer": "blue"}`` plus,
when one file holds both splits, ``"split": "train" | "test"``; optional ``"choices"`` (a list, for the
``choice`` metric) and ``"meta"`` (an object); other keys go into ``meta``. ``id`` and ``answer`` are
required; ``text`` defaults to ``""``; ``image`` may be absent or null for a sample without an image.
``video`` (a video file, or a list of frame image files) instead of ``image`` makes a video sample
(:func:`mint.tasks.video.video_sample`); ``audio`` (an audio file) an audio sample
(:func:`mint.tasks.audio.audio_sample`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mint.errors import MintError, first_line
from mint.io import read_jsonl
from mint.tasks.audio import audio_sample
from mint.tasks.schema import CallableImage, FileImage, Sample, check_image_file, open_image
from mint.tasks.video import video_sample

SPLITS = ("train", "test")
_RESERVED = {
    "id",
    "image",
    "video",
    "audio",
    "num_frames",
    "text",
    "answer",
    "answers",
    "split",
    "choices",
    "meta",
}


def _scalar(value: Any, where: str, field: str) -> str:
    """A string field; integers are accepted and turned into strings."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MintError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
    return str(value)


def _references(value: Any, where: str, field: str) -> list[str] | None:
    """Several reference answers (a record's ``answers`` list), or None when absent."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise MintError(f"{where}: field {field!r} must be a non-empty list of reference answers")
    return [_scalar(v, where, field) for v in value]


def read_jsonl_samples(
    path: Path, image_root: Path, *, split: str | None = None, check_images: bool = True
) -> dict[str, list[tuple[int, Sample]]]:
    """Read samples from a JSONL file, as ``{split: [(line, sample), ...]}``.

    With ``split`` given, every record belongs to it (a ``split`` field, if present, must agree); without,
    each record must carry ``"split": "train"`` or ``"test"``. Image paths resolve against ``image_root``.
    """
    out: dict[str, list[tuple[int, Sample]]] = {s: [] for s in SPLITS}
    for lineno, rec in read_jsonl(path):
        where = f"{path}:{lineno}"
        refs = _references(rec.get("answers"), where, "answers")
        for key in ("id",) if refs else ("id", "answer"):
            if key not in rec or rec[key] is None:
                raise MintError(f"{where}: missing field {key!r}")
        sid = _scalar(rec["id"], where, "id")
        if not sid.strip():
            raise MintError(f"{where}: field 'id' is empty")
        answer = _scalar(rec["answer"], where, "answer") if rec.get("answer") is not None else refs[0]
        text = rec.get("text")
        text = "" if text is None else _scalar(text, where, "text")
        rec_split = rec.get("split")
        if split is None:
            if rec_split is None:
                raise MintError(
                    f"{where}: missing field 'split' (train or test; needed when one file holds both splits)"
                )
            if rec_split not in SPLITS:
                raise MintError(f"{where}: field 'split': expected 'train' or 'test', got {rec_split!r}")
        elif rec_split is not None and rec_split != split:
            raise MintError(
                f"{where}: field 'split' is {rec_split!r} but the file is the task's {split} file"
            )
        meta = rec.get("meta", {})
        if not isinstance(meta, dict):
            raise MintError(f"{where}: field 'meta' must be an object")
        meta = {**{k: v for k, v in rec.items() if k not in _RESERVED}, **meta}
        if refs:
            meta["answers"] = refs
        if "choices" in rec:
            choices = rec["choices"]
            if not isinstance(choices, list) or not choices:
                raise MintError(f"{where}: field 'choices' must be a non-empty list")
            meta["choices"] = [_scalar(c, where, "choices") for c in choices]
            if answer not in meta["choices"]:
                raise MintError(
                    f"{where}: field 'answer': {answer!r} is not one of the sample's choices {meta['choices']}"
                )
        image = None
        if rec.get("image") is not None:
            rel = _scalar(rec["image"], where, "image")
            img_path = Path(rel) if Path(rel).is_absolute() else image_root / rel
            if check_images:
                check_image_file(img_path, where)
            image = FileImage(img_path)
        if sum(rec.get(k) is not None for k in ("image", "video", "audio")) > 1:
            raise MintError(f"{where}: a sample has one of 'image', 'video' or 'audio', not several")
        if rec.get("video") is not None:  # a video sample (mint.tasks.video)
            sample = video_sample(rec, sid, text, answer, meta, image_root, where, check_images)
        elif rec.get("audio") is not None:  # an audio sample (mint.tasks.audio)
            sample = audio_sample(rec, sid, text, answer, meta, image_root, where, check_images)
        else:
            sample = Sample(sid, text, answer, image, meta)
        out[split or rec_split].append((lineno, sample))
    return out


# --- Hugging Face datasets -------------------------------------------------------------------------


def _import_datasets(where: str):
    try:
        import datasets
    except ImportError:
        raise MintError(
            f"{where}: the 'hf' loader needs the Hugging Face datasets package (pip install datasets)"
        ) from None
    return datasets


@contextmanager
def _offline(datasets: Any) -> Iterator[None]:
    """Never download: switch datasets and huggingface_hub to offline mode while loading, then restore."""
    import huggingface_hub.constants as hub

    targets = [
        (datasets.config, "HF_HUB_OFFLINE"),
        (datasets.config, "HF_DATASETS_OFFLINE"),
        (hub, "HF_HUB_OFFLINE"),
    ]
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr in targets if hasattr(obj, attr)]
    for obj, attr, _ in saved:
        setattr(obj, attr, True)
    try:
        yield
    finally:
        for obj, attr, value in saved:
            setattr(obj, attr, value)


class _HFImage:
    """Picklable lookup of one image cell of a dataset (decoded on access)."""

    __slots__ = ("ds", "row", "column")

    def __init__(self, ds: Any, row: int, column: str) -> None:
        self.ds, self.row, self.column = ds, row, column

    def __call__(self) -> Any:
        value = self.ds[self.row][self.column]
        if isinstance(value, dict) and value.get("bytes") is not None:
            import io

            return open_image(io.BytesIO(value["bytes"]), f"dataset row {self.row}, column {self.column!r}")
        if isinstance(value, dict) and value.get("path"):
            return FileImage(value["path"]).load()
        if isinstance(value, str):
            return FileImage(value).load()
        if value is None:
            raise MintError(f"row {self.row} of the dataset has no image in column {self.column!r}")
        return value


#: a folder holding ``save_to_disk`` copies of hub datasets as ``<folder>/<owner>/<name>``
DATASETS_DIR_ENV = "MINT_DATASETS_DIR"


def _open_hf(name: str, split: str, *, config: str | None, cache_dir: str | None, base: Path, where: str):
    datasets = _import_datasets(where)
    local = Path(name).expanduser()
    local = local if local.is_absolute() else base / local
    saved = os.environ.get(DATASETS_DIR_ENV)
    if not local.exists() and saved and (Path(saved).expanduser() / name).is_dir():
        local = Path(saved).expanduser() / name  # a save_to_disk copy of hub id `name`
    try:
        with _offline(datasets):
            if local.is_dir() and (
                (local / "dataset_dict.json").is_file() or (local / "state.json").is_file()
            ):
                ds = datasets.load_from_disk(str(local))  # a dataset saved with save_to_disk
                if isinstance(ds, datasets.DatasetDict):
                    if split not in ds:
                        raise MintError(f"{where}: no split {split!r} in {local} (has: {', '.join(ds)})")
                    ds = ds[split]
                return ds
            path = str(local) if local.exists() else name
            return datasets.load_dataset(path, config, split=split, cache_dir=cache_dir)
    except MintError:
        raise
    except Exception as e:  # datasets raises many types (FileNotFoundError, ConnectionError, ValueError)
        raise MintError(
            f"{where}: cannot load Hugging Face dataset {name!r} split {split!r} from the local cache "
            f"({first_line(e)})"
        ) from None


def read_hf_samples(
    name: str,
    split: str,
    columns: dict[str, str],
    *,
    config: str | None,
    cache_dir: str | None,
    base: Path,
    where: str,
    row_id_prefix: str = "",
) -> list[Sample]:
    """Samples of one split of a Hugging Face dataset (local cache or ``save_to_disk`` folder only).

    ``columns`` maps ``id`` / ``image`` / ``text`` / ``answer`` / ``answers`` to dataset columns (defaults:
    the same names; ``id`` falls back to the row number, ``text`` to ``""``, ``image`` to none). Class-label
    answers become their label names; ``answers`` (a list column: several references per sample) gives
    ``meta["answers"]`` and, without an ``answer`` column, the answer (its first item); other columns go
    into ``meta``. Without an id column the id is ``row_id_prefix`` + the row number.
    """
    ds = _open_hf(name, split, config=config, cache_dir=cache_dir, base=base, where=where)
    cols = {"id": "id", "image": "image", "text": "text", "answer": "answer", **columns}
    names = list(ds.column_names)
    refs_col = cols.get("answers")
    if refs_col is not None and "answer" not in columns and "answer" not in names:
        cols["answer"] = refs_col  # the first reference is the answer
    for key in ("answer",) + tuple(k for k in columns if k != "answer"):
        if cols[key] not in names:
            raise MintError(
                f"{where}: field 'columns.{key}': no column {cols[key]!r} in {name} (columns: {', '.join(names)})"
            )
    id_col = cols["id"] if cols["id"] in names else None
    text_col = cols["text"] if cols["text"] in names else None
    image_col = cols["image"] if cols["image"] in names else None
    feature = ds.features[cols["answer"]]
    to_label = getattr(feature, "int2str", None)
    plain = ds.remove_columns([image_col]) if image_col else ds  # read everything but images eagerly
    used = {c for c in (id_col, text_col, image_col, cols["answer"], refs_col) if c}
    out = []
    for i, row in enumerate(plain):
        rw = f"{where}: {name}[{split}] row {i}"
        refs = _references(row[refs_col], rw, f"columns.answers ({refs_col!r})") if refs_col else None
        ans = row[cols["answer"]]
        if ans is None:
            raise MintError(f"{rw}: field 'answer' is missing (column {cols['answer']!r})")
        if refs is not None and cols["answer"] == refs_col:
            answer = refs[0]
        else:
            answer = (
                to_label(ans) if to_label is not None and isinstance(ans, int) else _scalar(ans, rw, "answer")
            )
        sid = _scalar(row[id_col], rw, "id") if id_col else f"{row_id_prefix}{i}"
        text = row[text_col] if text_col else ""
        text = "" if text is None else _scalar(text, rw, "text")
        meta = {k: v for k, v in row.items() if k not in used and isinstance(v, (str, int, float, bool))}
        if refs is not None:
            meta["answers"] = refs
        image = CallableImage(_HFImage(ds, i, image_col)) if image_col else None
        out.append(Sample(sid, text, answer, image, meta))
    return out
