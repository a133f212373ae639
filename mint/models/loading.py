"""Loading a backbone: the embedded ``tiny``, a local folder or a Hugging Face model id.

Network policy (the Hugging Face convention): a hub id that is in the local Hugging Face cache is used from
there, with no network access at all (mint never checks the hub for updates); one that is not is downloaded
once (weights as safetensors only, never pickles) unless ``HF_HUB_OFFLINE=1``. When it is neither a folder
nor cached, and offline mode is set or the hub cannot be reached, loading fails at once with one line saying
which and what to do. Everything is then loaded from the local folder (``local_files_only=True``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mint.errors import MintError, first_line
from mint.io import check_safetensors
from mint.models.audio import AUDIO_MODEL_TYPES
from mint.models.base import VisionLanguageModel
from mint.models.devices import resolve_device
from mint.models.load_options import LoadOptions
from mint.models.prompts import Ablation

TINY_DIR = Path(__file__).resolve().parent / "tiny"
TINY_VIDEO_DIR = Path(__file__).resolve().parent / "tiny_video"
TINY_AUDIO_DIR = Path(__file__).resolve().parent / "tiny_audio"
#: the embedded backbones: name -> (package folder, the repository script that builds it)
EMBEDDED = {
    "tiny": (TINY_DIR, "tools/build_tiny.py"),
    "tiny-video": (TINY_VIDEO_DIR, "tools/build_tiny_video.py"),
    "tiny-audio": (TINY_AUDIO_DIR, "tools/build_tiny_audio.py"),
}
DTYPES = ("float32", "bfloat16", "float16", "auto")


#: the files a hub model is downloaded with: configs, tokenizers, templates and safetensors weights
HUB_FILES = ("*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken")


def _offline() -> bool:
    from huggingface_hub import constants

    env = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").upper()
    return constants.HF_HUB_OFFLINE or env in {"1", "ON", "YES", "TRUE"}


def hub_folder(repo_id: str) -> str:
    """The local folder of Hugging Face model ``repo_id``: its cached snapshot, else a fresh download
    (unless offline); a :class:`MintError` saying why when there is neither."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise MintError(f"{repo_id}: neither a model folder nor a Hugging Face model id") from None
    try:
        return snapshot_download(repo_id, local_files_only=True)
    except LocalEntryNotFoundError:
        pass
    cache = constants.HF_HUB_CACHE
    if _offline():
        raise MintError(
            f"{repo_id}: not a model folder and not in the Hugging Face cache ({cache}); HF_HUB_OFFLINE is "
            "set, so it is not downloaded (unset it to download the model once, or give a local folder)"
        )
    try:
        return snapshot_download(repo_id, allow_patterns=list(HUB_FILES), etag_timeout=10)
    except (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError) as e:
        raise MintError(
            f"{repo_id}: not a model folder, and the Hugging Face hub has no such model, or it is private or "
            f"gated ({type(e).__name__}; check the name, or log in with `hf auth login`)"
        ) from None
    except (LocalEntryNotFoundError, OSError) as e:  # connection refused, DNS, timeouts
        raise MintError(
            f"{repo_id}: not a model folder, not in the Hugging Face cache ({cache}), and the hub "
            f"({constants.ENDPOINT}) cannot be reached ({first_line(e).splitlines()[0]}); connect once to "
            "download it, or give a local folder"
        ) from None
    except Exception as e:  # any other hub error (HTTP status, xet) is one line too
        raise MintError(
            f"{repo_id}: cannot be downloaded from the Hugging Face hub ({first_line(e)})"
        ) from None


def resolve_model(spec: str) -> str:
    """``tiny`` / ``tiny-video`` -> the package folder; an existing folder -> its absolute path; a Hugging Face id -> its
    local folder (:func:`hub_folder`: cached, else downloaded unless offline).

    A spec that looks like a path (``/``, ``.``, ``~``, or more than one ``/``) but does not exist is an error.
    """
    if spec in EMBEDDED:
        folder, script = EMBEDDED[spec]
        if not (folder / "config.json").is_file():
            raise MintError(
                f"the embedded backbone {spec!r} is missing from {folder} "
                f"(reinstall mint, or rebuild it from a checkout: python {script})"
            )
        return str(folder)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise MintError(f"{spec}: not a model folder (no config.json)")
        return str(path.resolve())
    if path.exists():
        raise MintError(f"{spec}: a model must be a folder or a Hugging Face id, not a file")
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1 or os.sep in spec.replace("/", "", 1):
        raise MintError(f"{spec}: no such model folder")
    return hub_folder(spec)


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


def _model_type(source: str) -> str | None:
    """``model_type`` of the config in folder ``source`` (None where it cannot be read)."""
    import json

    try:
        return json.loads((Path(source) / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


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

    The files are read from a local folder (:func:`resolve_model`: a hub id is downloaded first unless it is
    cached or ``HF_HUB_OFFLINE=1``). Returns a :class:`~mint.models.base.VisionLanguageModel`
    in eval mode on ``device`` (resolved by :func:`mint.models.devices.resolve_device`: ``auto`` is this
    process's GPU where there is one), or spread over the devices by ``device_map``. ``attn_implementation``
    (``sdpa``, ``eager``, ``flash_attention_2``, ...; None: transformers' choice, SDPA where the architecture
    has it) is fixed for the whole model; scoring takes any of them (:func:`mint.models.scoring.takes_4d_mask`).
    ``quantize``: bitsandbytes ``4bit`` / ``8bit`` (:class:`~mint.models.load_options.LoadOptions`).
    """
    from transformers import AutoModelForImageTextToText, AutoModelForMultimodalLM
    from transformers.utils import logging as hf_logging

    if dtype not in DTYPES:
        raise MintError(f"unknown dtype {dtype!r} (expected one of {', '.join(DTYPES)})")
    options = LoadOptions(dtype, device_map, attn_implementation, quantize).check()
    dev = resolve_device(device)
    source = resolve_model(spec)
    check_safetensors(source, "model weights")
    hf_logging.disable_progress_bar()
    try:
        kwargs = options.pretrained_kwargs(dev)
        if not options.places_itself() and dev.type != "cpu":  # straight onto the device: no CPU copy first
            kwargs["device_map"] = {"": dev}
        auto = (
            AutoModelForMultimodalLM
            if _model_type(source) in AUDIO_MODEL_TYPES
            else AutoModelForImageTextToText
        )
        model = auto.from_pretrained(source, local_files_only=True, **kwargs)
        processor, tokenizer, image_processor = _load_processor(source)
    except (OSError, ValueError) as e:
        raise MintError(f"model {spec!r} cannot be loaded from {source}: {first_line(e)}") from None
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
