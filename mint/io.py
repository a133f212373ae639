"""Reading inputs with precise errors and writing outputs atomically.

Every output file is written to a temporary file in the same folder and moved into place, so a killed
process never leaves a half-written file. Under the command line an existing output is never replaced
unless the command was given ``--force``: the check is made again at the moment of writing (the temporary
file is hard-linked to its name, which fails if the name exists), so a file created meanwhile, or by a
second command writing to the same place, is kept and the command fails. Outputs get the permissions the
user's umask gives a new file (0644 under umask 022), like any other tool's.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml

from mint import SCHEMA, __version__
from mint.errors import MintError, first_line

PathLike = str | os.PathLike

#: whether writing an output may replace an existing file (library default: yes; the CLI: only with --force)
_REPLACE: ContextVar[bool] = ContextVar("mint_replace_outputs", default=True)


@contextmanager
def replacing(allowed: bool) -> Iterator[None]:
    """Within the block, outputs written without an explicit ``replace`` replace existing files only if
    ``allowed`` (the command line runs every command under ``replacing(False)``)."""
    token = _REPLACE.set(allowed)
    try:
        yield
    finally:
        _REPLACE.reset(token)


def allow_replacing(allowed: bool) -> None:
    """Set the policy of :func:`replacing` for the rest of the current block (a command's ``--force``)."""
    _REPLACE.set(allowed)


def stamp(payload: dict[str, Any]) -> dict[str, Any]:
    """Return ``payload`` with ``mint_version`` and ``schema`` first, as every JSON output carries."""
    out: dict[str, Any] = {"mint_version": __version__, "schema": SCHEMA}
    out.update({k: v for k, v in payload.items() if k not in out})
    return out


def check_output(path: PathLike, force: bool = False) -> Path:
    """Refuse to overwrite an existing output unless ``force``, and a path whose folder cannot be made.

    Creates nothing: the folder is made when the output is written, so a command that fails in between
    leaves no empty folder behind.
    """
    path = Path(path)
    if path.exists() and not force:
        raise MintError(f"{path} already exists (use --force to overwrite)")
    if path.is_dir():
        raise MintError(f"{path} is a folder, expected a file path")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise MintError(f"{path}: cannot create its folder ({ancestor} is not a folder)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise MintError(f"{path}: cannot create it ({ancestor} is not writable)")
    return path


def file_mode() -> int:
    """The mode a new file gets under the process's umask (0o644 under umask 022)."""
    try:  # Linux: read it without changing it (changing it, even briefly, races with other threads)
        with open("/proc/self/status", encoding="ascii") as fh:
            umask = next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def make_folder(path: PathLike) -> list[Path]:
    """``mkdir -p path``; returns the folders it created, deepest last (for :func:`remove_empty`)."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MintError(f"{path}: cannot create the folder ({e.strerror or e})") from None
    return missing[::-1]


def remove_empty(folders: list[Path]) -> None:
    """Remove those of ``folders`` (as returned by :func:`make_folder`) that are still empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return


def _place(tmp: Path, path: Path, replace: bool) -> None:
    """Move ``tmp`` to ``path``; without ``replace``, fail if ``path`` exists at that moment."""
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic, and fails if path exists
    except FileExistsError:
        raise MintError(
            f"{path} already exists (it appeared while this command ran; use --force to overwrite)"
        ) from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # a file system without hard links: claim the name exclusively, then move the file onto it
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, file_mode()))
        except FileExistsError:
            raise MintError(
                f"{path} already exists (it appeared while this command ran; use --force to overwrite)"
            ) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


@contextmanager
def atomic_path(path: PathLike, replace: bool | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    ``replace`` (default: the policy of :func:`replacing`) says whether an existing ``path`` may be
    replaced; if not, one that exists when the file is moved into place is a :class:`MintError` and is
    kept. The file gets the umask's permissions; folders made for it and left empty by a failure are
    removed.
    """
    path = Path(path)
    replace = _REPLACE.get() if replace is None else replace
    created = make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    done = False
    try:
        yield tmp_path
        tmp_path.chmod(file_mode())
        _place(tmp_path, path, replace)
        done = True
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
        if not done:
            remove_empty(created)


def atomic_write_bytes(path: PathLike, data: bytes, replace: bool | None = None) -> Path:
    with atomic_path(path, replace) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str, replace: bool | None = None) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), replace)


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, paths, sets
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _finite(obj: Any) -> Any:
    """Replace NaN/inf floats by None so the output is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def dumps_json(obj: Any, indent: int | None = 2) -> str:
    obj = json.loads(json.dumps(obj, default=_json_default))  # normalise numpy types first
    return json.dumps(_finite(obj), indent=indent, allow_nan=False) + "\n"


def atomic_write_json(path: PathLike, obj: Any, indent: int | None = 2, replace: bool | None = None) -> Path:
    return atomic_write_text(path, dumps_json(obj, indent=indent), replace)


def atomic_write_jsonl(path: PathLike, rows: list[Any], replace: bool | None = None) -> Path:
    return atomic_write_text(path, "".join(dumps_json(r, indent=None) for r in rows), replace)


def read_text(path: PathLike, what: str = "file") -> str:
    """A text file's contents; a missing file or bytes that are not UTF-8 are a :class:`MintError` naming
    the file (and the line of the first bad byte)."""
    path = Path(path)
    if not path.is_file():
        raise MintError(f"{path}: no such {what}")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise MintError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})"
        ) from None


def parse_yaml(text: str, path: PathLike) -> Any:
    """``yaml.safe_load`` with a :class:`MintError` naming ``path`` and the line of malformed or
    pathologically nested input."""
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise MintError(f"{path}: YAML nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise MintError(f"{path}{where}: malformed YAML ({getattr(e, 'problem', e)})") from None


def parse_json(text: str, path: PathLike, line: int | None = None) -> Any:
    """``json.loads`` with a :class:`MintError` naming ``path`` (and ``line``, for one JSONL record) for
    malformed, pathologically nested or oversized (integers of thousands of digits) input."""
    where = f"{path}:{line}" if line is not None else str(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        where = where if line is not None else f"{where}:{e.lineno}"
        raise MintError(f"{where}: malformed JSON ({e.msg})") from None
    except RecursionError:
        raise MintError(f"{where}: JSON nested too deeply") from None
    except ValueError:  # an integer beyond Python's digit limit
        raise MintError(f"{where}: malformed JSON (a number with too many digits)") from None


def read_json(path: PathLike, what: str = "JSON file") -> Any:
    """Load a JSON file; a missing, empty, non-UTF-8 or malformed file is a :class:`MintError` naming it."""
    path = Path(path)
    text = read_text(path, what)
    if not text.strip():
        raise MintError(f"{path}: empty {what}")
    return parse_json(text, path)


def read_jsonl(path: PathLike) -> list[tuple[int, dict[str, Any]]]:
    """Load a JSONL file as ``(line_number, record)`` pairs, skipping blank lines.

    Raises :class:`MintError` naming the file and line of the first malformed or non-object line.
    """
    path = Path(path)
    rows: list[tuple[int, dict[str, Any]]] = []
    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        rec = parse_json(line, path, lineno)
        if not isinstance(rec, dict):
            raise MintError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
        rows.append((lineno, rec))
    if not rows:
        raise MintError(f"{path}: empty file (no records)")
    return rows


def read_config(path: PathLike, what: str = "config file") -> dict[str, Any]:
    """Load a YAML or JSON mapping with errors that name the file (and line, for syntax errors)."""

    path = Path(path)
    if not path.is_file():
        raise MintError(f"{path}: no such {what}")
    if path.suffix == ".json":
        data = read_json(path, what)
    else:
        data = parse_yaml(read_text(path, what), path)
    if not isinstance(data, dict):
        raise MintError(f"{path}: expected a mapping at the top level of the {what}")
    return data


def check_safetensors(folder: PathLike, what: str = "weights") -> None:
    """Every ``*.safetensors`` file in ``folder`` has a readable header whose tensors fit in the file; an
    empty, truncated or corrupt one is a :class:`MintError` naming it (before a loader fails obscurely)."""
    from safetensors import safe_open

    for path in sorted(Path(folder).glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt") as fh:
                fh.keys()
        except Exception as e:  # safetensors raises its own error type for a bad file
            raise MintError(f"{path}: unreadable {what} ({first_line(e)})") from None
