"""Loading a backbone offline: the embedded ``tiny``, a local folder or a cached Hugging Face id."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mint.errors import MintError, first_line
from mint.models.prompts import Ablation

TINY_DIR = Path(__file__).resolve().parent / "tiny"
DTYPES = ("float32", "bfloat16", "float16", "auto")


def resolve_model(spec: str) -> str:
    """``tiny`` -> the package folder; an existing folder -> its absolute path; else the id unchanged.

    A spec that looks like a path (``/``, ``.``, ``~``, or more than one ``/``) but does not exist is an error.
    """
    if spec == "tiny":
        if not (TINY_DIR / "config.json").is_file():
            raise MintError(
                f"the embedded backbone is missing from {TINY_DIR} "
                "(rebuild it: python -m mint.models.build_tiny)"
            )
        return str(TINY_DIR)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise MintError(f"{spec}: not a model folder (no config.json)")
        return str(path.resolve())
    if path.exists():
        raise MintError(f"{spec}: a model must be a folder or a Hugging Face id, not a file")
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1 or os.sep in spec.replace("/", "", 1):
        raise MintError(f"{spec}: no such model folder")
    return spec


def _load_processor(source: str) -> tuple[Any, Any, Any]:
    """(processor or None, tokenizer, image processor). Processors that need torchvision (Qwen2-VL's video
    processor) cannot be built here: fall back to the tokenizer and the PIL image processor."""
    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer

    try:
        proc = AutoProcessor.from_pretrained(source, local_files_only=True)
        tok = getattr(proc, "tokenizer", proc)
        return (proc if hasattr(proc, "tokenizer") else None), tok, getattr(proc, "image_processor", None)
    except (ImportError, ValueError, OSError, TypeError, AttributeError):
        tok = AutoTokenizer.from_pretrained(source, local_files_only=True)
        try:
            ip = AutoImageProcessor.from_pretrained(source, local_files_only=True)
        except (ImportError, ValueError, OSError):
            ip = None
        return None, tok, ip


def _chat_template_file(source: str) -> str | None:
    path = Path(source) / "chat_template.jinja"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def load_model(
    spec: str,
    *,
    device: str = "auto",
    dtype: str = "float32",
    ablation: Ablation | None = None,
    max_new_tokens: int = 16,
    device_map: str | None = None,
    attn_implementation: str | None = None,
    quantize: str | None = None,
):
    """Load ``spec`` (``tiny``, a local folder, or a Hugging Face id from the local cache) for inference.

    Offline only (``local_files_only=True``). Returns a :class:`~mint.models.base.VisionLanguageModel`
    in eval mode on ``device`` (resolved by :func:`mint.models.devices.resolve_device`: ``auto`` is this
    process's GPU where there is one), or spread over the devices by ``device_map``. ``attn_implementation``
    (``sdpa``, ``eager``, ``flash_attention_2``, ...; None: transformers' choice, SDPA where the architecture
    has it) is fixed for the whole model; scoring takes any of them (:func:`mint.models.scoring.takes_4d_mask`).
    ``quantize``: bitsandbytes ``4bit`` / ``8bit`` (:class:`~mint.models.load_options.LoadOptions`).
    """
    from transformers import AutoModelForImageTextToText
    from transformers.utils import logging as hf_logging

    from mint.models.base import VisionLanguageModel
    from mint.models.devices import resolve_device
    from mint.models.load_options import LoadOptions

    if dtype not in DTYPES:
        raise MintError(f"unknown dtype {dtype!r} (expected one of {', '.join(DTYPES)})")
    options = LoadOptions(dtype, device_map, attn_implementation, quantize).check()
    dev = resolve_device(device)
    source = resolve_model(spec)
    hf_logging.disable_progress_bar()
    try:
        kwargs = options.pretrained_kwargs(dev)
        if not options.places_itself() and dev.type != "cpu":  # straight onto the device: no CPU copy first
            kwargs["device_map"] = {"": dev}
        model = AutoModelForImageTextToText.from_pretrained(source, local_files_only=True, **kwargs)
        processor, tokenizer, image_processor = _load_processor(source)
    except (OSError, ValueError) as e:
        raise MintError(f"model {spec!r} cannot be loaded offline: {first_line(e)}") from None
    except ImportError as e:  # e.g. flash_attention_2 without the flash-attn package
        raise MintError(f"model {spec!r} cannot be loaded: {first_line(e)}") from None
    if not options.places_itself():
        model.to(dev)
    model.eval()
    tokenizer.padding_side = "right"
    template = None
    if processor is None and not getattr(tokenizer, "chat_template", None):
        template = _chat_template_file(source) if Path(source).is_dir() else None
    return VisionLanguageModel(
        model,
        processor,
        tokenizer,
        image_processor=image_processor,
        ablation=ablation,
        name=spec,
        max_new_tokens=max_new_tokens,
        chat_template=template,
    )
