"""The ``mint run`` config: one YAML/JSON file describing the whole pipeline, validated up front.

Every section is optional; unknown keys are errors that name the key. Paths are taken relative to the
config file's folder (``builtin:`` suites and model ids are left as they are).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mint.clustering import METHODS
from mint.clustering.affinity import OPTIONS as AFFINITY_OPTIONS
from mint.clustering.affinity import _options as affinity_options
from mint.clustering.methods import AFFINITY_METHODS
from mint.errors import MintError
from mint.io import read_config
from mint.models.load_options import LoadOptions
from mint.models.loading import EMBEDDED
from mint.models.prompts import TEXT_ONLY_IMAGE
from mint.models.runner import parse_modes
from mint.plotting.style import FORMATS
from mint.profiling.profiler import parse_thresholds
from mint.profiling.similarity import available_similarities, get_similarity
from mint.seeds import check_seed
from mint.tasks import BUILTIN_PREFIX, check_builtin
from mint.tuning.config import RUN_KEYS, TuneConfig
from mint.tuning.tracking import check_report_to
from mint.vocabulary import DEFAULT_THRESHOLDS, MODES

#: defaults of every section; a config file overrides any part of them
DEFAULTS: dict[str, Any] = {
    "suite": "builtin:default",
    "model": "tiny",
    "out": "mint-run",
    "seed": 0,
    "seeds": None,  # tuning repeats: every compared grouping tuned and evaluated once per seed ([seed])
    "holdout": [],  # tasks kept out of grouping and training, routed to a group and scored as unseen tasks
    "device": "auto",
    "dtype": "float32",
    "device_map": None,  # accelerate's big-model placement over the visible devices (excludes device)
    "attn_implementation": None,  # the attention kernel, passed to transformers as is
    "quantize": None,  # 4bit / 8bit: tuning and evaluation on a bitsandbytes base (QLoRA)
    "threads": None,
    "max_train": None,
    "max_test": None,
    "report_to": "none",
    "predict": {
        "modes": ",".join(MODES),
        "split": "train",
        "batch_size": 16,
        "features": True,
        "max_samples": None,
        "text_only_image": "auto",
    },
    "profile": {
        "samples": 10,
        "size": None,
        "similarity": "exact",
        "thresholds": list(DEFAULT_THRESHOLDS),
        "decide_by": "corrected",
        "bins": 20,
        "pid_target": "answer",
    },
    "cluster": {
        "methods": ["mint", "all", "random", "single"],
        "k": "auto",
        "split_uniqueness": False,
        "bootstrap": 200,
        "affinity": {},
    },
    "plot": {"format": "png"},
    "tune": {},
    # merged: also a `merged` row, every group adapter of each MINT run merged into one (as mint export)
    "evaluate": {"zero_shot": True, "batch_size": 16, "merged": False},
    "variants": {},
}
SECTIONS = ("predict", "profile", "cluster", "plot", "tune", "evaluate", "variants")


@dataclass
class RunConfig:
    """A validated pipeline config: the top-level keys and each stage's section."""

    data: dict[str, Any]
    source: str = "config"
    base_dir: Path = field(default_factory=Path.cwd)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def out(self) -> Path:
        return Path(self.data["out"])


def _merge(source: str, user: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(DEFAULTS)
    for key, value in user.items():
        if key not in DEFAULTS:
            raise MintError(f"{source}: unknown key {key!r} (expected one of {', '.join(DEFAULTS)})")
        if key in SECTIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise MintError(f"{source}: {key}: expected a mapping of options")
            if key not in ("tune", "variants"):  # these are checked by _check_variants / TuneConfig
                for sub in value:
                    if sub not in DEFAULTS[key]:
                        raise MintError(
                            f"{source}: {key}.{sub}: unknown option (expected one of "
                            f"{', '.join(DEFAULTS[key])})"
                        )
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


def load_options(cfg: dict[str, Any] | RunConfig) -> LoadOptions:
    """How the config's backbone is loaded: ``dtype``, ``device_map``, ``attn_implementation``, ``quantize``."""
    return LoadOptions(cfg["dtype"], cfg["device_map"], cfg["attn_implementation"], cfg["quantize"])


def _check(source: str, cfg: dict[str, Any], allow_code: bool = False) -> None:

    for key in ("suite", "model", "out", "device", "dtype"):
        if not isinstance(cfg[key], str) or not cfg[key]:
            raise MintError(f"{source}: {key}: expected a non-empty string, got {cfg[key]!r}")
    for key in ("device_map", "attn_implementation", "quantize"):
        if cfg[key] is not None and (not isinstance(cfg[key], str) or not cfg[key]):
            raise MintError(f"{source}: {key}: expected a non-empty string or null, got {cfg[key]!r}")
    _with_key(source, load_options(cfg).check, cfg["device"], names_key=False)
    check_seed(cfg["seed"], f"{source}: seed")
    seeds = cfg["seeds"] if cfg["seeds"] is not None else [cfg["seed"]]
    if (
        not isinstance(seeds, list)
        or not seeds
        or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds)
    ):
        raise MintError(f"{source}: seeds: expected a non-empty list of integers, got {cfg['seeds']!r}")
    if len(set(seeds)) != len(seeds):
        raise MintError(f"{source}: seeds: a seed is listed twice ({seeds})")
    for s in seeds:
        check_seed(s, f"{source}: seeds")
    cfg["seeds"] = seeds
    holdout = cfg["holdout"] if cfg["holdout"] is not None else []
    if not isinstance(holdout, list) or not all(isinstance(t, str) and t for t in holdout):
        raise MintError(f"{source}: holdout: expected a list of task names, got {cfg['holdout']!r}")
    if len(set(holdout)) != len(holdout):
        raise MintError(f"{source}: holdout: a task is listed twice ({holdout})")
    cfg["holdout"] = holdout
    for key in ("max_train", "max_test", "threads"):
        _int(f"{source}: {key}", cfg[key], 1, none_ok=True)

    check_report_to(cfg["report_to"], f"{source}: report_to")
    methods = cfg["cluster"]["methods"]
    if isinstance(methods, str):
        methods = cfg["cluster"]["methods"] = [m.strip() for m in methods.split(",") if m.strip()]
    if not isinstance(methods, list) or not methods:
        raise MintError(f"{source}: cluster.methods: expected a non-empty list of grouping methods")
    for m in methods:
        if m not in (*METHODS, *AFFINITY_METHODS):
            raise MintError(
                f"{source}: cluster.methods: unknown method {m!r} (choose from "
                f"{', '.join((*METHODS, *AFFINITY_METHODS))})"
            )
    affinity = cfg["cluster"]["affinity"]
    if not isinstance(affinity, dict):
        raise MintError(f"{source}: cluster.affinity: expected a mapping of options")
    for key in affinity:
        if key not in (*AFFINITY_OPTIONS, "steps", "batch_size", "lr", "max_samples"):
            raise MintError(f"{source}: cluster.affinity.{key}: unknown option")
    if len(set(methods)) != len(methods):
        raise MintError(f"{source}: cluster.methods: a method is listed twice")

    if cfg["plot"]["format"] not in FORMATS:
        raise MintError(
            f"{source}: plot.format: expected one of {', '.join(FORMATS)}, got {cfg['plot']['format']!r}"
        )
    tune = {k.replace("-", "_"): v for k, v in cfg["tune"].items()}
    clash = [k for k in tune if k in RUN_KEYS]
    if clash:
        raise MintError(
            f"{source}: tune.{clash[0]}: set it at the top level of the run config, not under tune"
        )
    tune.setdefault("seed", cfg["seed"])
    if cfg["max_train"] is not None:
        tune.setdefault("max_train", cfg["max_train"])
    TuneConfig.from_dict(tune, f"{source}: tune")  # names the bad key or value
    cfg["tune"] = tune
    _check_variants(source, cfg, methods, tune)
    _check_stages(source, cfg, allow_code)


def _int(where: str, v: Any, low: int, none_ok: bool = False) -> None:
    if v is None and none_ok:
        return
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= 2**31 - 1:
        extra = " or null" if none_ok else ""
        raise MintError(f"{where}: expected an integer from {low} to {2**31 - 1}{extra}, got {v!r}")


def _choice(where: str, v: Any, choices: tuple[str, ...]) -> None:
    if v not in choices:
        raise MintError(f"{where}: expected one of {', '.join(choices)}, got {v!r}")


_FLAG = re.compile(r"--([a-z]+(?:-[a-z]+)*)")


def _with_key(where: str, fn: Any, *args: Any, names_key: bool = True) -> Any:
    """``fn(*args)``, its :class:`MintError` (written for the command line) restated in the config's words
    under ``where``: a leading ``--flag: `` is dropped where ``where`` names the key (``names_key``), and
    every other ``--flag-name`` becomes the key ``flag_name``."""
    try:
        return fn(*args)
    except MintError as e:
        msg = str(e)
        if names_key and msg.startswith("--") and ": " in msg:
            msg = msg.split(": ", 1)[1]
        raise MintError(f"{where}: {_FLAG.sub(lambda m: m.group(1).replace('-', '_'), msg)}") from None


def _check_stages(source: str, cfg: dict[str, Any], allow_code: bool) -> None:
    """Every stage's options: types, ranges and names, before any stage runs."""

    if cfg["suite"].startswith(BUILTIN_PREFIX):
        _with_key(f"{source}: suite", check_builtin, cfg["suite"])
    pr = cfg["predict"]
    _with_key(f"{source}: predict.modes", parse_modes, pr["modes"])
    _choice(f"{source}: predict.split", pr["split"], ("train", "test"))
    _int(f"{source}: predict.batch_size", pr["batch_size"], 1)
    _int(f"{source}: predict.max_samples", pr["max_samples"], 1, none_ok=True)
    if not isinstance(pr["features"], bool):
        raise MintError(f"{source}: predict.features: expected true or false, got {pr['features']!r}")
    _choice(f"{source}: predict.text_only_image", pr["text_only_image"], TEXT_ONLY_IMAGE)
    pf = cfg["profile"]
    _int(f"{source}: profile.samples", pf["samples"], 1)
    _int(f"{source}: profile.size", pf["size"], 1, none_ok=True)
    _int(f"{source}: profile.bins", pf["bins"], 2)
    _with_key(f"{source}: profile.thresholds", parse_thresholds, pf["thresholds"])
    _choice(f"{source}: profile.decide_by", pf["decide_by"], ("raw", "corrected"))
    _choice(f"{source}: profile.pid_target", pf["pid_target"], ("answer", "both"))
    _check_similarity(f"{source}: profile.similarity", pf["similarity"], allow_code)
    cl = cfg["cluster"]
    k = cl["k"]
    if not (isinstance(k, str) and k.strip().lower() == "auto"):
        _int(f"{source}: cluster.k", k, 1)
    if not isinstance(cl["split_uniqueness"], bool):
        raise MintError(f"{source}: cluster.split_uniqueness: expected true or false")
    _int(f"{source}: cluster.bootstrap", cl["bootstrap"], 0)
    aff = dict(cl["affinity"])
    for key, low in (("steps", 1), ("batch_size", 1)):
        if key in aff:
            _int(f"{source}: cluster.affinity.{key}", aff.pop(key), low)
    if "max_samples" in aff:
        _int(f"{source}: cluster.affinity.max_samples", aff.pop("max_samples"), 1, none_ok=True)
    if "lr" in aff:
        lr = aff.pop("lr")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise MintError(f"{source}: cluster.affinity.lr: expected a positive number, got {lr!r}")
    _with_key(f"{source}: cluster.affinity", affinity_options, aff)
    ev = cfg["evaluate"]
    for key in ev:
        if key not in DEFAULTS["evaluate"]:
            raise MintError(f"{source}: evaluate.{key}: unknown option")
    for key in ("zero_shot", "merged"):
        if not isinstance(ev[key], bool):
            raise MintError(f"{source}: evaluate.{key}: expected true or false, got {ev[key]!r}")
    if ev["merged"] and "mint" not in cfg["cluster"]["methods"]:
        raise MintError(
            f"{source}: evaluate.merged: merges the MINT runs' adapters; add mint to cluster.methods"
        )
    _int(f"{source}: evaluate.batch_size", ev["batch_size"], 1)


def _check_similarity(where: str, name: Any, allow_code: bool) -> None:
    """A registered name, ``numeric:TOL`` or ``embedding:MODEL``; ``package.module:function`` imports and runs
    code, so it is taken from a run config only with ``mint run --allow-code``."""

    if not isinstance(name, str) or not name:
        raise MintError(f"{where}: expected a similarity name, got {name!r}")
    head, sep, _ = name.partition(":")
    if name in available_similarities() or head == "embedding":
        return
    if sep and head != "numeric" and not allow_code:
        raise MintError(
            f"{where}: {name!r} would import and run code from {head!r}; a run config may name such a "
            "function only when you allow it (mint run --allow-code)"
        )
    _with_key(where, get_similarity, name)


def _check_variants(source: str, cfg: dict[str, Any], methods: list[str], tune: dict[str, Any]) -> None:
    """``variants: {row: {groups: <method>, tune: {options}}}``: extra report rows that tune one of the
    groupings with other options (e.g. ``tower: auto``, ``concurrent: true``, ``continual: per-group``)."""

    for name, v in cfg["variants"].items():
        where = f"{source}: variants.{name}"
        if (
            not isinstance(name, str)
            or not name
            or name in methods
            or name in ("zero_shot", "merged")
            or "/" in name
        ):
            raise MintError(
                f"{where}: a variant needs a name of its own (not a method, zero_shot or merged, no '/')"
            )
        if not isinstance(v, dict) or set(v) - {"groups", "tune"}:
            raise MintError(
                f"{where}: expected a mapping with 'groups' (a method of cluster.methods) and 'tune'"
            )
        if v.get("groups") not in methods:
            raise MintError(
                f"{where}.groups: expected one of cluster.methods ({', '.join(methods)}), "
                f"got {v.get('groups')!r}"
            )
        extra = {k.replace("-", "_"): val for k, val in (v.get("tune") or {}).items()}
        clash = [k for k in extra if k in RUN_KEYS]
        if clash:
            raise MintError(f"{where}.tune.{clash[0]}: set it at the top level of the run config")
        TuneConfig.from_dict({**tune, **extra}, f"{where}.tune")
        v["tune"] = extra


def _resolve_paths(cfg: dict[str, Any], base: Path) -> None:
    suite = cfg["suite"]
    if not suite.startswith("builtin:") and not Path(suite).is_absolute():
        cfg["suite"] = str((base / suite).resolve())
    model = cfg["model"]
    if model not in EMBEDDED and (base / model).exists() and not Path(model).is_absolute():
        cfg["model"] = str((base / model).resolve())


def load_run_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None, *, allow_code: bool = False
) -> RunConfig:
    """Read, merge with the defaults and validate a run config (``None``: defaults only): every stage and
    variant, before any of them runs.

    ``overrides`` (e.g. ``--out`` and ``--seed`` from the command line) win over the file. ``allow_code``
    lets ``profile.similarity`` name a ``package.module:function`` (imported and run).
    """
    user: dict[str, Any] = {}
    source, base = "run config", Path.cwd()
    if path is not None:
        user = read_config(path, "run config")
        source, base = str(path), Path(path).resolve().parent
    cfg = _merge(source, {**user, **{k: v for k, v in (overrides or {}).items() if v is not None}})
    if "out" in user and not (overrides or {}).get("out") and not Path(cfg["out"]).is_absolute():
        cfg["out"] = str(base / cfg["out"])
    _check(source, cfg, allow_code)
    _resolve_paths(cfg, base)
    suite = cfg["suite"]
    if not suite.startswith("builtin:") and not Path(suite).is_file():
        raise MintError(f"{source}: suite: no such suite file {suite}")
    return RunConfig(cfg, source, base)
