"""Training options of ``mint tune``: one dataclass, its defaults, and validation of config files.

:meth:`TuneConfig.from_dict` accepts what a YAML/JSON config file holds (the same names as the CLI
options, with ``_`` or ``-``) and raises :class:`~mint.errors.MintError` naming the key at fault.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from mint.errors import MintError
from mint.seeds import check_seed
from mint.tasks.demos import DEMO_SELECTION
from mint.tuning.continual_methods import METHODS, resolve_params
from mint.tuning.data import parse_mix
from mint.vocabulary import MODES

TOWERS = (
    "language",
    "vision",
    "both",
    "auto",
    "image",
    "video",
)  # auto: per group, from the tasks' profiles (mint.tuning.towers); image / video: mint.tuning.targets
SCHEDULERS = ("linear", "cosine", "constant")
CONTINUAL = METHODS  # mint.tuning.continual_methods
IN_CONTEXT_KEYS = ("in_context", "demo_selection")

#: keys a tune config file may hold besides the training options (the run's inputs and output)
RUN_KEYS = (
    "suite",
    "model",
    "groups",
    "out",
    "dtype",
    "max_test",
    "profiles",
    "device",
    "device_map",
    "attn_implementation",
    "quantize",
    "report_to",
)


@dataclass
class TuneConfig:
    """Options of the group-wise LoRA trainer (one adapter per group, fresh optimizer per group)."""

    tower: str = "language"  # where LoRA goes: language | vision | both | auto
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str = "linear"  # linear | cosine | constant
    warmup_ratio: float = 0.0
    max_grad_norm: float = 1.0  # 0 disables clipping
    epochs: int = 1
    batch_size: int = 8  # per process; the global batch is batch_size * processes * grad_accum
    grad_accum: int = 1
    max_train: int | None = None  # train samples per task (None: all)
    checkpoint_every: int = 50  # optimizer steps between checkpoints (0: none)
    mode: str = "both"  # modality of the training prompts (both | image | text)
    seed: int = 0
    continual: str | None = None  # sequential | per-group: groups trained as stages (mint.tuning.continual)
    stage_order: str | None = None  # continual stage order, comma-separated group names (None: groups.json's)
    continual_params: dict[str, Any] | None = (
        None  # the continual method's hyper-parameters (continual_methods)
    )
    concurrent: bool = (
        False  # all group adapters in one pass, mixed batches (mint.tuning.concurrent); dropout 0
    )
    in_context: int = 0  # demonstrations from the task's train split in every prompt (mint.tasks.demos)
    demo_selection: str = "random"  # random | similar: how the demonstrations are chosen
    mix: str = (
        "proportional"  # proportional | equal | temperature:T: tasks' shares of a group's epoch (data.py)
    )
    gradient_checkpointing: bool = False  # recompute activations in the backward pass (less memory)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self, source: str = "tune config") -> TuneConfig:
        def bad(key: str, msg: str) -> MintError:
            return MintError(f"{source}: {key}: {msg}")

        if self.tower not in TOWERS:
            raise bad("tower", f"expected one of {', '.join(TOWERS)}, got {self.tower!r}")
        if self.scheduler not in SCHEDULERS:
            raise bad("scheduler", f"expected one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")
        if self.mode not in MODES:
            raise bad("mode", f"expected one of {', '.join(MODES)}, got {self.mode!r}")
        if self.continual is not None and self.continual not in CONTINUAL:
            raise bad(
                "continual", f"expected one of {', '.join(CONTINUAL)} (or null), got {self.continual!r}"
            )
        if self.continual_params is not None:
            if not isinstance(self.continual_params, dict):
                raise bad(
                    "continual_params", f"expected a mapping of KEY: VALUE, got {self.continual_params!r}"
                )
            if self.continual is None:
                raise bad("continual_params", "only applies to a continual run (set continual)")
            given = {str(k).replace("-", "_") for k in self.continual_params}
            resolved = resolve_params(self.continual, self.continual_params, source)
            self.continual_params = {k: v for k, v in resolved.items() if k in given}  # typed, as given
        if self.stage_order is not None and self.continual is None:
            raise bad("stage_order", "only applies to a continual run (set continual)")
        if self.continual is not None and getattr(self, "concurrent", False):
            raise bad(
                "continual", "a continual run trains its stages one after another; it cannot be concurrent"
            )
        try:
            parse_mix(self.mix)
        except MintError as e:
            raise bad("mix", str(e).split(": ", 1)[1]) from None
        if self.in_context < 0:
            raise bad("in_context", f"must be 0 (no demonstrations) or positive, got {self.in_context}")
        if self.demo_selection not in DEMO_SELECTION:
            raise bad(
                "demo_selection", f"expected one of {', '.join(DEMO_SELECTION)}, got {self.demo_selection!r}"
            )
        if self.concurrent and self.dropout > 0:
            raise bad(
                "dropout",
                f"concurrent tuning trains without LoRA dropout: set dropout to 0 (got {self.dropout})",
            )
        check_seed(self.seed, f"{source}: seed")
        for key in ("rank", "epochs", "batch_size", "grad_accum"):
            if getattr(self, key) < 1:
                raise bad(key, f"must be at least 1, got {getattr(self, key)}")
        if self.max_train is not None and self.max_train < 1:
            raise bad("max_train", f"must be at least 1 (or null for all), got {self.max_train}")
        if self.checkpoint_every < 0:
            raise bad(
                "checkpoint_every", f"must be 0 (no checkpoints) or positive, got {self.checkpoint_every}"
            )
        if not self.lr > 0:
            raise bad("lr", f"must be positive, got {self.lr}")
        if not self.alpha > 0:
            raise bad("alpha", f"must be positive, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise bad("dropout", f"must be in [0, 1), got {self.dropout}")
        if not 0 <= self.warmup_ratio < 1:
            raise bad("warmup_ratio", f"must be in [0, 1), got {self.warmup_ratio}")
        for key in ("weight_decay", "max_grad_norm"):
            if getattr(self, key) < 0:
                raise bad(key, f"must not be negative, got {getattr(self, key)}")
        return self

    # ------------------------------------------------------------------ conversion
    @classmethod
    def from_dict(
        cls, data: dict[str, Any], source: str = "tune config", *, allow: tuple[str, ...] = ()
    ) -> TuneConfig:
        """Build from a mapping; unknown keys (except those in ``allow``), wrong types and bad values
        raise :class:`MintError` naming ``source`` and the key."""
        if not isinstance(data, dict):
            raise MintError(f"{source}: expected a mapping of options, got {type(data).__name__}")
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for raw_key, value in data.items():
            key = str(raw_key).replace("-", "_")
            if key in allow:
                continue
            if key not in types:
                known = ", ".join(sorted([*types, *allow]))
                raise MintError(f"{source}: unknown key {raw_key!r} (known keys: {known})")
            values[key] = _coerce(key, value, types[key], source)
        cfg = cls.__new__(cls)
        for f in fields(cls):
            setattr(cfg, f.name, values.get(f.name, f.default))
        return cfg.validate(source)

    def to_dict(self) -> dict[str, Any]:
        """The options as recorded in tune.json and checkpoints; the in-context keys only with
        ``in_context`` > 0 and ``gradient_checkpointing`` only when on, so runs without them record (and
        resume) exactly as before."""
        d = asdict(self)
        if not self.continual_params:
            d.pop("continual_params", None)  # runs without method parameters record (and resume) as before
        if not self.in_context:
            for key in IN_CONTEXT_KEYS:
                d.pop(key, None)
        if not self.gradient_checkpointing:  # recorded only when on: older runs resume unchanged
            d.pop("gradient_checkpointing")
        return d


def _coerce(key: str, value: Any, type_name: Any, source: str) -> Any:
    """Check ``value`` against the declared type (given as a string under postponed annotations)."""
    t = str(type_name)
    optional = "None" in t
    if value is None:
        if optional:
            return None
        raise MintError(f"{source}: {key}: must not be null")
    if isinstance(value, bool) and "bool" not in t:
        raise MintError(f"{source}: {key}: expected a number, got {value!r}")
    if t.startswith("bool"):
        if not isinstance(value, bool):
            raise MintError(f"{source}: {key}: expected true or false, got {value!r}")
        return value
    if t.startswith("int"):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise MintError(f"{source}: {key}: expected an integer, got {value!r}")
        if abs(value) > 2**31 - 1:
            raise MintError(f"{source}: {key}: {value} is too large for this field")
        return value
    if t.startswith("float"):
        if isinstance(value, str):
            try:
                value = float(value)  # YAML reads 1e-3 as a string
            except ValueError:
                raise MintError(f"{source}: {key}: expected a number, got {value!r}") from None
        if not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            raise MintError(f"{source}: {key}: expected a finite number, got {value!r}")
        return float(value)
    if t.startswith("str"):
        if not isinstance(value, str):
            raise MintError(f"{source}: {key}: expected a string, got {value!r}")
        return value
    return value
