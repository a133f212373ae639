"""``mint export``: a tuning run as a bundle a serving stack takes as it is.

The bundle holds the group adapters in peft format (``adapters/<group>/``), the routing table
(``routing.json``: task -> adapter, each adapter's rank, modules and whether it stays in the language
model), ``SERVING.md`` with the vLLM multi-LoRA command and a request example, optionally one merged model
per group (``merged/<group>/``: the backbone with that adapter folded in, for servers without LoRA or for
adapters on the vision tower), and ``merged-run/``: a run folder whose single adapter ``merged`` is all group
adapters merged into one (peft ``add_weighted_adapter``, each group's update weighted 1/K), which
``mint evaluate RUN --baseline BUNDLE/merged-run`` reports as the ``merged`` row.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

from mint.errors import MintError
from mint.io import atomic_write_json, atomic_write_text, read_json, stamp
from mint.models.architectures import architecture as arch_of
from mint.models.loading import resolve_model
from mint.tuning.routing import Router, run_adapters
from mint.tuning.runs import load_run_model, load_tune

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
MERGED = "merged"


def adapter_info(folder: Path, language_root: str) -> dict[str, Any]:
    """Rank, alpha, target modules of a saved adapter, and whether all its LoRA weights sit in the language
    model (vLLM applies LoRA to a vision-language model's language model only)."""
    from safetensors import safe_open

    cfg = read_json(folder / "adapter_config.json", "adapter_config.json")
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    ranks = [int(cfg.get("r", 8)), *(int(v) for v in (cfg.get("rank_pattern") or {}).values())]
    return {
        "rank": max(ranks),
        "alpha": cfg.get("lora_alpha"),
        "target_modules": cfg.get("target_modules"),
        "language_model_only": all(f"{language_root}." in k for k in keys),
    }


def export_run(run_dir: str | Path, out: str | Path, *, merge: bool = False, device: str = "auto") -> dict:
    """Write the serving bundle of ``run_dir`` into ``out`` (a new or empty folder); return routing.json."""
    run, out = Path(run_dir), Path(out)
    tune = load_tune(run)
    folders = run_adapters(run)
    router = Router(run)
    spec = tune.get("model")
    if not spec:
        raise MintError(f"{run}/tune.json names no model")
    base = resolve_model(str(spec))
    arch = _architecture(base)
    out.mkdir(parents=True, exist_ok=True)
    adapters: dict[str, Any] = {}
    for name, folder in folders.items():
        target = out / "adapters" / name
        target.mkdir(parents=True, exist_ok=True)
        for file in ADAPTER_FILES:
            shutil.copyfile(folder / file, target / file)
        adapters[name] = {"path": f"adapters/{name}", **adapter_info(folder, arch.language_root)}
    rank = max(a["rank"] for a in adapters.values())
    vllm = ["vllm", "serve", base, "--enable-lora", "--lora-modules"]
    vllm += [f"{n}={a['path']}" for n, a in adapters.items()]
    vllm += ["--max-lora-rank", str(_vllm_rank(rank)), "--max-loras", str(len(adapters))]
    routing = stamp(
        {
            "run": str(run),
            "base_model": base,
            "model": spec,
            "dtype": tune.get("dtype"),
            **({"quantize": tune["quantize"]} if tune.get("quantize") else {}),
            "routing": dict(router.assignment),
            "adapters": adapters,
            "vllm_command": vllm,
            "merged_models": None,
            "merged_run": "merged-run",
        }
    )
    if merge and tune.get("quantize"):
        raise MintError(
            f"--merge: this run was tuned on a {tune['quantize']} quantised base (QLoRA); folding adapters into "
            "quantised weights loses them. Export without --merge (the adapters serve on the full-precision base)"
        )

    vlm = load_run_model(tune, device=device)
    if merge:
        routing["merged_models"] = {n: f"merged/{n}" for n in folders}
        for name, folder in folders.items():
            _merged_model(vlm, folder, out / "merged" / name)
    _merged_run(vlm, run, tune, folders, out / "merged-run")  # the last use of vlm: its model is changed
    atomic_write_json(out / "routing.json", routing)
    atomic_write_text(out / "SERVING.md", serving_text(routing, arch.language_root))
    return routing


def merged_run(run_dir: str | Path, out: str | Path, *, device: str = "auto") -> Path:
    """Write ``out``: the run folder whose one adapter, ``merged``, is every group adapter of ``run_dir``
    merged with weight 1/K (as ``mint export`` writes ``merged-run/``), to evaluate as the ``merged`` row."""
    run, out = Path(run_dir), Path(out)
    tune = load_tune(run)
    _merged_run(load_run_model(tune, device=device), run, tune, run_adapters(run), out)
    return out


def _architecture(base: str) -> Any:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(base, local_files_only=True)
    except (OSError, ValueError) as e:
        raise MintError(f"model {base!r} cannot be read offline: {e}") from None
    return arch_of(config.model_type)


def _vllm_rank(rank: int) -> int:
    """The smallest ``--max-lora-rank`` vLLM accepts that holds ``rank``."""
    return next((r for r in (8, 16, 32, 64, 128, 256, 320, 512) if r >= rank), rank)


def _merged_model(vlm: Any, folder: Path, target: Path) -> None:
    """The backbone with the adapter in ``folder`` folded into its weights, saved with its processor."""
    import copy

    from peft import PeftModel

    model = PeftModel.from_pretrained(copy.deepcopy(vlm.model), str(folder)).merge_and_unload()
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target))
    for part in (vlm.processor, vlm.tokenizer, vlm.image_processor):
        if part is not None and hasattr(part, "save_pretrained"):
            part.save_pretrained(str(target))


def _merged_run(vlm: Any, run: Path, tune: dict[str, Any], folders: dict[str, Path], target: Path) -> None:
    """A run folder with one adapter, ``merged``, made from every group adapter with weight 1/K (peft's
    ``add_weighted_adapter``, ``cat``: the exact weighted sum of the groups' low-rank updates), routing every
    task to it; its tune.json says ``method: merged``."""
    from peft import PeftModel

    names = list(folders)
    model = PeftModel.from_pretrained(vlm.model, str(folders[names[0]]), adapter_name=names[0])
    for name in names[1:]:
        model.load_adapter(str(folders[name]), adapter_name=name)
    model.add_weighted_adapter(
        names, [1.0 / len(names)] * len(names), adapter_name=MERGED, combination_type="cat"
    )
    with warnings.catch_warnings():  # "adapter X was active which is now deleted"
        warnings.simplefilter("ignore", UserWarning)
        for name in names:
            model.delete_adapter(name)
    (target / "adapters").mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target / "adapters"), selected_adapters=[MERGED])
    saved = target / "adapters" / MERGED
    if not (saved / "adapter_config.json").is_file():  # peft saves a non-default adapter in a sub-folder
        raise MintError(f"peft did not save the merged adapter under {saved}")
    tasks = sorted(Router(run).assignment)
    groups = {"method": MERGED, "groups": {MERGED: tasks}, "assignment": dict.fromkeys(tasks, MERGED)}
    atomic_write_json(target / "groups.json", stamp(groups))
    params = sum(p.numel() for n, p in model.named_parameters() if f".{MERGED}." in n)
    merged_tune = {
        k: v for k, v in tune.items() if k not in ("routing", "adapters", "continual", "groups", "towers")
    }
    merged_tune.update(
        {
            "method": MERGED,
            "groups": groups["groups"],
            "merged_from": {"run": str(run), "adapters": names, "weights": [1.0 / len(names)] * len(names)},
            "trainable_params": params,
        }
    )
    atomic_write_json(target / "tune.json", merged_tune)


def serving_text(routing: dict[str, Any], language_root: str) -> str:
    """SERVING.md: how to serve the bundle with vLLM, a request, and what vLLM cannot take."""
    adapters = routing["adapters"]
    vision = [n for n, a in adapters.items() if not a["language_model_only"]]
    first_task, first_adapter = next(iter(routing["routing"].items()))
    request = {
        "model": first_adapter,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,<...>"}},
                    {"type": "text", "text": "<the task instruction and the sample's text>"},
                ],
            }
        ],
        "max_tokens": 16,
        "temperature": 0,
    }
    lines = [
        "# Serving this run",
        "",
        f"Base model: `{routing['base_model']}`. `routing.json` maps every task to its adapter "
        "(`adapters/<name>/`, peft format).",
        "",
        "## vLLM (multi-LoRA, OpenAI-compatible server)",
        "",
        "```bash",
        " ".join(routing["vllm_command"]),
        "```",
        "",
        f"A request for task `{first_task}` names its adapter (`{first_adapter}`) as the model:",
        "",
        "```bash",
        "curl http://localhost:8000/v1/chat/completions -H 'Content-Type: application/json' -d '"
        + json.dumps(request)
        + "'",
        "```",
        "",
        "vLLM applies LoRA adapters of a vision-language model to its language model only "
        f"(`{language_root}`); adapters on the vision tower or the projector need a merged model "
        "(`mint export --merge`: `merged/<group>/`, served as a plain model, one per group) or a server that "
        "runs peft adapters on every module (in process: `mint.Router`).",
        "",
    ]
    if vision:
        lines += [
            f"**Adapters that reach beyond the language model here: {', '.join(vision)}.** vLLM would load "
            "only their language-model part; serve their merged models instead.",
            "",
        ]
    if routing.get("merged_models"):
        lines += ["Merged models: " + ", ".join(f"`{p}`" for p in routing["merged_models"].values()), ""]
    lines += [
        "`merged-run/` is the run with all group adapters merged into one (`mint evaluate RUN --baseline "
        "merged-run` reports it as the `merged` row).",
        "",
    ]
    return "\n".join(lines)
