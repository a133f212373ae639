"""``mint tune``: one LoRA adapter per group of a groups.json on one shared backbone.

Options come from (lowest to highest priority) the defaults, the run being resumed, ``--config``
(YAML/JSON with the same names), and the command line. Under ``accelerate launch`` / ``torchrun``
the training is data-parallel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from mint.cli.types import DEFAULT_MODEL, bounded_int, progress_option
from mint.errors import MintError
from mint.io import allow_replacing, read_config
from mint.models.devices import DEVICE_HELP
from mint.models.load_options import DTYPES, QUANTIZE, LoadOptions, loading_options
from mint.seeds import seed_type
from mint.tasks.demos import DEMO_SELECTION
from mint.tuning.checkpoint import read_state
from mint.tuning.config import CONTINUAL, RUN_KEYS, SCHEDULERS, TOWERS, TuneConfig
from mint.tuning.continual_methods import parse_param
from mint.tuning.tracking import REPORT_TO, TRACKING_DIR, check_report_to
from mint.tuning.tune_job import TuneJob, run_tune_job
from mint.vocabulary import MODES

_SET_BY_USER = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


@click.command("tune")
@click.option("--suite", help="Suite file or builtin:<name> (e.g. builtin:default).")
@click.option(
    "--model",
    default=DEFAULT_MODEL,
    show_default=True,
    help="Backbone: the shipped 'tiny', a local folder or a Hugging Face id.",
)
@click.option("--groups", type=click.Path(path_type=Path), help="groups.json from mint cluster.")
@click.option("--out", type=click.Path(path_type=Path), help="Run folder to write.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="YAML/JSON file with any of these options (command-line options win).",
)
@click.option(
    "--tower",
    type=click.Choice(TOWERS),
    default="language",
    show_default=True,
    help="Where LoRA goes; auto: per group from the tasks' profiles (needs --profiles).",
)
@click.option(
    "--profiles", type=click.Path(path_type=Path), help="profiles.json from mint profile (for --tower auto)."
)
@click.option(
    "--continual",
    type=click.Choice(CONTINUAL),
    default=None,
    help="Train the groups as stages: sequential (one shared adapter) or per-group; evaluates the "
    "seen tasks after each stage and writes continual.json.",
)
@click.option(
    "--stage-order", default=None, help="Continual stage order: g1,g2,... (default: groups.json's)."
)
@click.option(
    "--continual-param",
    "continual_params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A hyper-parameter of the --continual method (repeatable), e.g. fraction=0.2 for replay, "
    "lambda_orth=0.5 for o-lora (docs/tuning.md lists them).",
)
@click.option(
    "--gradient-checkpointing",
    "gradient_checkpointing",
    is_flag=True,
    default=False,
    help="Recompute activations in the backward pass: less GPU memory, about a third more compute.",
)
@click.option(
    "--concurrent",
    is_flag=True,
    default=False,
    help="Train all group adapters in one pass over the backbone (mixed batches, LoRA dropout 0).",
)
@click.option(
    "--in-context",
    "in_context",
    type=bounded_int(),
    default=0,
    show_default=True,
    metavar="K",
    help="In-context demonstrations (image, question, answer) from the task's train split in every "
    "training prompt; mint evaluate uses the same by default.",
)
@click.option(
    "--demo-selection",
    type=click.Choice(DEMO_SELECTION),
    default="random",
    show_default=True,
    help="random (seeded per sample) or similar (nearest train samples, pixel + word embedding).",
)
@click.option(
    "--mix",
    default="proportional",
    show_default=True,
    metavar="proportional|equal|temperature:T",
    help="How the tasks of a group share its epochs: by their sizes, equally, or n_t ** (1/T).",
)
@click.option("--rank", type=bounded_int(), default=8, show_default=True)
@click.option("--alpha", type=float, default=16.0, show_default=True)
@click.option("--dropout", type=float, default=0.05, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--scheduler", type=click.Choice(SCHEDULERS), default="linear", show_default=True)
@click.option("--warmup-ratio", type=float, default=0.0, show_default=True)
@click.option("--max-grad-norm", type=float, default=1.0, show_default=True, help="0 disables clipping.")
@click.option("--epochs", type=bounded_int(), default=1, show_default=True)
@click.option("--batch-size", type=bounded_int(), default=8, show_default=True, help="Per process.")
@click.option("--grad-accum", type=bounded_int(), default=1, show_default=True)
@click.option(
    "--max-train", type=bounded_int(), default=None, help="Train samples per task (default: the suite's)."
)
@click.option(
    "--checkpoint-every",
    type=bounded_int(),
    default=50,
    show_default=True,
    help="Optimizer steps between checkpoints (0: none).",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="both",
    show_default=True,
    help="Modalities of the training prompts.",
)
@click.option("--seed", type=seed_type(), default=0, show_default=True)
@click.option(
    "--max-test",
    type=bounded_int(),
    default=None,
    help="Test samples per task that mint evaluate will use (recorded in tune.json).",
)
@click.option(
    "--dtype",
    type=click.Choice(DTYPES),
    default=None,
    help="Backbone precision (with --quantize: the compute dtype): float32, bfloat16, or float16 (with loss "
    "scaling, GPU only). Default: bfloat16 on a GPU that has it, else float32.",
)
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@loading_options
@click.option(
    "--quantize",
    type=click.Choice(QUANTIZE),
    default=None,
    help="QLoRA: load the frozen backbone in 4-bit NF4 (double quantisation) or 8-bit with bitsandbytes "
    "(pip install 'mint[qlora]'); the adapters train in the --dtype compute precision.",
)
@click.option(
    "--report-to",
    type=click.Choice(REPORT_TO),
    default="none",
    show_default=True,
    help="Experiment tracker (accelerate's) that gets loss, lr, gradient norm and throughput per step, one "
    "run per group, in <out>/tracking (wandb offline, MLflow local unless configured otherwise).",
)
@click.option("--resume", is_flag=True, help="Continue a killed run in --out from its last checkpoint.")
@click.option("--force", is_flag=True, help="Overwrite an existing run in --out.")
@progress_option
@click.pass_context
def command(
    ctx: click.Context, config_path: Path | None, resume: bool, force: bool, progress: bool, **options: Any
) -> None:
    """Tune one LoRA adapter per group of GROUPS on the backbone MODEL, with the tasks of SUITE."""
    allow_replacing(force)
    if resume and force:
        raise MintError("--resume and --force contradict each other (continue the run, or start over)")
    options["continual_params"] = _continual_params(options.get("continual_params") or ())
    explicit = {k: v for k, v in options.items() if ctx.get_parameter_source(k) in _SET_BY_USER}
    from_file = (
        {str(k).replace("-", "_"): v for k, v in read_config(config_path, "tune config").items()}
        if config_path
        else {}
    )
    if from_file:
        TuneConfig.from_dict(from_file, str(config_path), allow=RUN_KEYS)  # names the bad key, if any
    merged = {**from_file, **explicit}
    out = merged.get("out")
    if not out:
        raise MintError("missing --out (the run folder), on the command line or in the config file")
    out = Path(out)
    base: dict[str, Any] = {}
    if resume:
        state = read_state(out / "checkpoints")
        if state is None:
            raise MintError(f"{out}: nothing to resume (no checkpoints/state.json); run without --resume")
        meta = state.get("meta") or {}
        base = {
            "suite": meta.get("suite"),
            "model": meta.get("model"),
            "dtype": meta.get("dtype"),
            "max_test": meta.get("max_test"),
            "quantize": meta.get("quantize"),
            "attn_implementation": meta.get("attn_implementation"),
            "profiles": meta.get("profiles_file"),
            "groups": meta.get("groups_file"),
            "report_to": (meta.get("tracking") or {}).get("report_to"),
            **state.get("config", {}),
        }
        base = {k: v for k, v in base.items() if v is not None}
    merged = {**{k: v for k, v in options.items() if v is not None}, **base, **merged}
    for key in ("suite", "model", "groups"):
        if not merged.get(key):
            raise MintError(f"missing --{key} (on the command line or in the config file)")
    if merged.get("continual") and merged.get("concurrent"):
        raise MintError("--continual and --concurrent exclude each other (stages run one after another)")
    if merged.get("concurrent") and "dropout" not in {**base, **from_file, **explicit}:
        merged["dropout"] = 0.0  # the default 0.05 cannot be routed per sample: say so rather than refuse
        click.echo("note: --concurrent trains without LoRA dropout (dropout 0)", err=True)
    train_keys = {k: v for k, v in merged.items() if k not in RUN_KEYS}
    config = TuneConfig.from_dict(train_keys, str(config_path) if config_path else "options")
    if config.tower == "auto" and not merged.get("profiles"):
        raise MintError("--tower auto needs --profiles profiles.json (the tasks' interaction profiles)")
    where = f"{config_path}: report_to" if "report_to" in from_file and "report_to" not in explicit else None
    report_to = check_report_to(merged.get("report_to"), where or "--report-to")
    profiles_path = Path(merged["profiles"]) if merged.get("profiles") else None
    job = TuneJob(
        suite=str(merged["suite"]),
        model=str(merged["model"]),
        grouping=Path(merged["groups"]),
        out=out,
        load=LoadOptions(
            merged.get("dtype"),  # None: the precision policy's default (mint/tuning/precision.py)
            merged.get("device_map"),
            merged.get("attn_implementation"),
            merged.get("quantize"),
        ),
        device=merged.get("device"),
        max_test=merged.get("max_test"),
        profiles=profiles_path,
        profiles_source=str(profiles_path) if profiles_path else None,
        report_to=report_to,
        resume=resume,
        force=force,
        progress=progress,
    )
    _run(config, job)


def _continual_params(pairs: tuple[str, ...]) -> dict[str, str] | None:
    """``--continual-param KEY=VALUE`` options as a mapping (values checked by the method), None if none."""
    return dict(parse_param(p) for p in pairs) or None


def _run(config: TuneConfig, job: TuneJob) -> None:
    from accelerate import PartialState  # heavy; the launch's state, made by the run's accelerator

    result = run_tune_job(config, job)
    if not PartialState().is_main_process:
        return
    if config.continual:
        _echo_continual(job.out, result)
        return
    if config.tower == "auto":
        click.echo("towers: " + ", ".join(f"{g}: {t}" for g, t in result["towers"].items()))
    click.echo(
        f"wrote {job.out}: {len(result['adapters'])} adapters, {result['trainable_params']} trainable "
        f"parameters, {result['train_seconds']:.1f} s"
    )
    if "tracking" in result:
        click.echo(f"tracking ({job.report_to}): {job.out / TRACKING_DIR}")
    for g, a in result["adapters"].items():
        click.echo(
            f"  {g}: {len(a['tasks'])} tasks, {a['examples']} examples, {a['steps']} steps, "
            f"final loss {a['final_loss']:.4f}"
            if a.get("final_loss") is not None
            else f"  {g}: {len(a['tasks'])} tasks"
        )


def _echo_continual(out: Path, result: dict[str, Any]) -> None:
    cont = result["continual"]
    click.echo(
        f"wrote {out}: continual ({cont['mode']}), {len(cont['stages'])} stages, {len(result['adapters'])} "
        f"adapter(s), {result['trainable_params']} trainable parameters, {result['train_seconds']:.1f} s"
    )
    for name, value in (cont["metrics"] or {}).items():
        click.echo(f"  {name}: {'n/a' if value is None else f'{value:.4f}'}")
