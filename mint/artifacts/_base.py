"""What every artifact shares: a validated JSON payload, where it came from, atomic saving, and error
locations (file, line, field) for the checks of :mod:`mint.artifacts`."""

from __future__ import annotations

import copy
import math
import os
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from mint import SCHEMA
from mint.errors import MintError
from mint.io import atomic_write_json, check_output, parse_json, read_text, stamp

A = TypeVar("A", bound="Artifact")
Key = str | int


def key_lines(text: str) -> dict[tuple[Key, ...], int]:
    """The line (1-based) where each value of a JSON document starts, keyed by its path (object keys and
    array indices from the root); the root is ``()``. ``text`` must be valid JSON."""
    lines: dict[tuple[Key, ...], int] = {(): 1}
    stack: list[list[Any]] = []  # per open container: [kind, path, current key or index, expecting key]
    line, i, n = 1, 0, len(text)

    def value_starts() -> None:
        if stack:
            top = stack[-1]
            lines.setdefault((*top[1], top[2]), line)

    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if stack and stack[-1][0] == "{" and stack[-1][3]:
                stack[-1][2] = parse_json(text[i : j + 1], "<key>")
                stack[-1][3] = False
            else:
                value_starts()
            i = j
        elif c in "{[":
            value_starts()
            path = (*stack[-1][1], stack[-1][2]) if stack else ()
            stack.append([c, path, 0, c == "{"])
        elif c in "}]":
            stack.pop()
        elif c == ",":
            top = stack[-1]
            if top[0] == "[":
                top[2] += 1
            else:
                top[3] = True
        elif not c.isspace() and c != ":":
            value_starts()
            while i + 1 < n and text[i + 1] not in ",]}\n \t\r":
                i += 1
        i += 1
    return lines


@dataclass(frozen=True)
class Where:
    """Names a place in a file for an error message: ``file:line: field`` (the line where the field, or
    the nearest enclosing one present, starts; no line for data that did not come from a file)."""

    source: str
    lines: Mapping[tuple[Key, ...], int] | None = None

    def __call__(self, *path: Key) -> str:
        dotted = ".".join(str(p) for p in path)
        head = self.head(*path)
        return f"{head}: {dotted}" if dotted else head

    def head(self, *path: Key) -> str:
        """``file:line`` of the field at ``path`` (or of its nearest enclosing field), ``file`` without lines."""
        if self.lines is not None:
            for k in range(len(path), -1, -1):
                line = self.lines.get(tuple(path[:k]))
                if line is not None:
                    return f"{self.source}:{line}"
        return self.source

    def error(self, *path: Key, message: str) -> MintError:
        return MintError(f"{self(*path)}: {message}")


# ---------------------------------------------------------------------------------------------- checks
def is_number(v: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def number(v: Any, at: Where, *path: Key) -> float:
    if not is_number(v):
        raise at.error(*path, message=f"expected a finite number, got {v!r}")
    return float(v)


def interval(v: Any, at: Where, *path: Key) -> tuple[float, float] | None:
    """``[low, high]`` (two finite numbers, low <= high), or None for a missing one."""
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or len(v) != 2 or not all(is_number(x) for x in v):
        raise at.error(*path, message=f"expected [low, high], got {v!r}")
    lo, hi = float(v[0]), float(v[1])
    if lo > hi:
        raise at.error(*path, message=f"low {lo} is above high {hi}")
    return lo, hi


def mapping(v: Any, at: Where, *path: Key) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise at.error(*path, message=f"expected an object, got {type(v).__name__}")
    return v


def check_schema(data: dict[str, Any], at: Where, required: bool = True) -> None:
    """``schema`` is the one this mint reads (``required``: it must be there)."""
    if "schema" not in data:
        if required:
            raise at.error(message="missing key 'schema' (not a mint file?)")
        return
    if data["schema"] != SCHEMA:
        version = data["schema"]
        raise MintError(f"{at.head('schema')}: schema {version!r} is not supported (expected {SCHEMA})")


def _content(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("mint_version", "schema")}


# -------------------------------------------------------------------------------------------- artifact
@dataclass(frozen=True, eq=False)
class Artifact(Mapping[str, Any]):
    """A validated JSON output of one stage: ``data`` is its payload as on disk, ``source`` where it came
    from. Read it through the subclass's accessors (or as a read-only mapping of its top-level keys);
    :meth:`save` writes it atomically, :meth:`load` reads and checks a file (errors name file, line and
    field)."""

    data: dict[str, Any]
    source: str = field(default="<memory>", compare=False)
    #: where each field starts in the file it was loaded from (for checks made after loading)
    lines: Mapping[tuple[Key, ...], int] | None = field(default=None, compare=False, repr=False)

    #: what the file is called in messages ("profiles file")
    WHAT: ClassVar[str] = "JSON file"
    #: the schema version this class reads and writes
    SCHEMA: ClassVar[int] = SCHEMA

    @classmethod
    @abstractmethod
    def validate(cls, data: Any, at: Where) -> dict[str, Any]:
        """The payload checked (and completed where older files lack a key); a :class:`MintError` otherwise."""

    @classmethod
    def from_dict(cls: type[A], data: Any, source: str = "<memory>") -> A:
        """Check ``data`` (a payload as on disk) and wrap it."""
        if isinstance(data, cls):
            return data
        return cls(cls.validate(data, Where(source)), source)

    @classmethod
    def load(cls: type[A], path: str | os.PathLike) -> A:
        """Read and check a file; every problem is one :class:`MintError` naming file, line and field."""
        path = Path(path)
        text = read_text(path, cls.WHAT)
        if not text.strip():
            raise MintError(f"{path}: empty {cls.WHAT}")
        data = parse_json(text, path)
        lines = key_lines(text)
        return cls(cls.validate(data, Where(str(path), lines)), str(path), lines)

    def where(self) -> Where:
        """Names this artifact's fields in error messages (with lines, when it was loaded from a file)."""
        return Where(self.source, self.lines)

    def to_dict(self) -> dict[str, Any]:
        """A copy of the payload as written (with ``mint_version`` and ``schema``)."""
        return stamp(copy.deepcopy(self.data))

    def save(self, path: str | os.PathLike, force: bool = False) -> Path:
        """Write the payload atomically to ``path``; an existing file is replaced only with ``force`` (and,
        under the command line, one that appears meanwhile never: :func:`mint.io.replacing`)."""
        check_output(path, force)
        return atomic_write_json(path, self.to_dict(), replace=True if force else None)

    def __eq__(self, other: object) -> bool:
        """Same class and same payload (the stamp aside: a file saved and loaded again equals its object)."""
        if type(other) is not type(self):
            return NotImplemented
        return _content(self.data) == _content(other.data)  # type: ignore[attr-defined]

    # read-only mapping of the top-level keys (what code written against the plain dict reads)
    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)
