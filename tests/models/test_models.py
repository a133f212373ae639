"""The model layer beyond single architectures: loading errors, the embedded tiny, ablation settings,
demonstrations, mixed batches, and wrappers that keep working under peft."""

from __future__ import annotations

import subprocess
import time

import pytest
import torch
from helpers_models import make_tiny_llava
from PIL import Image

from mint.errors import MintError
from mint.models import TINY_DIR, Ablation, load_model
from mint.tasks.schema import Sample, Task


@pytest.fixture(scope="module")
def llava_path(tmp_path_factory) -> str:
    return make_tiny_llava(tmp_path_factory.mktemp("llava"))


def _task() -> Task:
    imgs = [Image.new("RGB", (40, 40), c) for c in ((250, 0, 0), (0, 0, 250))]
    samples = [
        Sample("a", "first text ?", "red", imgs[0]),
        Sample("b", "second text ?", "blue", None),
        Sample("c", "third text ?", "blue", imgs[1]),
        Sample("d", "fourth ?", "red", imgs[0]),
    ]
    return Task("t", "answer with one word .", [], samples, answers=["red", "blue"])


def test_load_errors_are_mint_errors(tmp_path):
    with pytest.raises(MintError, match="no such model folder"):
        load_model(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MintError, match="no config.json"):
        load_model(str(tmp_path / "empty"))
    with pytest.raises(MintError, match="not in the Hugging Face cache"):
        load_model("nobody-here/no-such-model-xyz")
    with pytest.raises(MintError, match="dtype"):
        load_model("tiny", dtype="float8")


def test_tiny_is_package_data_and_loads_fast():
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "chat_template.jinja",
        "processor_config.json",
    ):
        path = TINY_DIR / name
        assert path.is_file(), name
        ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=TINY_DIR, capture_output=True)
        assert ignored.returncode == 1, f"{name} is git-ignored"
    assert (TINY_DIR / "model.safetensors").stat().st_size < 8_000_000
    load_model("tiny")  # warm imports
    start = time.perf_counter()
    vlm = load_model("tiny")
    assert time.perf_counter() - start < 2.0
    assert vlm.model_type == "llava" and not vlm.model.training


def test_ablation_settings_and_blank_text_only(llava_path):
    task = _task()
    vlm = load_model(llava_path)
    assert vlm.ablation_settings()["text_only"] == "no image"
    assert vlm.build_prompt(task, task.test[0], "text")[1] == []
    blank = load_model(llava_path, ablation=Ablation(text_only_image="blank", blank_color=(9, 9, 9)))
    prompt, ims = blank.build_prompt(task, task.test[0], "text")
    assert len(ims) == 1 and ims[0].getpixel((3, 3)) == (9, 9, 9) and ims[0].size == (40, 40)
    assert "first text" in prompt and blank.ablation_settings()["text_only"] == "blank image"
    with pytest.raises(MintError):
        Ablation(text_only_image="grey")
    with pytest.raises(MintError, match="mode"):
        vlm.build_prompt(task, task.test[0], "audio")


def test_demonstrations_come_first_with_their_images(llava_path):
    task = _task()
    vlm = load_model(llava_path)
    prompt, ims = vlm.build_prompt(task, task.test[2], "both", demos=[task.test[0], task.test[1]])
    assert prompt.index("first text") < prompt.index("second text") < prompt.index("third text")
    assert prompt.count("<image>") == 2 and len(ims) == 2
    assert ims[0].getpixel((0, 0)) == (250, 0, 0) and ims[1].getpixel((0, 0)) == (0, 0, 250)
    assert prompt.rstrip().endswith("ASSISTANT:")
    image_only, _ = vlm.build_prompt(task, task.test[2], "image", demos=[task.test[0]])
    assert "first text" not in image_only and "third text" not in image_only


def test_mixed_image_counts_keep_sample_order(llava_path):
    task = _task()
    vlm = load_model(llava_path)
    together = vlm.predict(task, task.test, "both", batch_size=4, progress=False)
    alone = [vlm.predict(task, [s], "both", progress=False)[0] for s in task.test]
    assert together == alone


def test_methods_work_through_peft(llava_path):
    from peft import LoraConfig, get_peft_model

    from mint.tuning.targets import target_regex

    task = _task()
    vlm = load_model(llava_path)
    before = vlm.predict(task, task.test, "both", progress=False)
    regex = target_regex(vlm.model_type, "language", ("q_proj", "v_proj"))
    vlm.model = get_peft_model(vlm.model, LoraConfig(r=2, target_modules=regex, init_lora_weights=True))
    targets = [n for n, _ in vlm.model.named_modules() if n.endswith("q_proj.lora_A")]
    assert targets and all("language_model" in n for n in targets)
    assert vlm.predict(task, task.test, "both", progress=False) == before  # LoRA B = 0 at init
    feats = vlm.features(task, task.test)
    assert feats["image"].shape == (4, 32)
    prompts = [vlm.build_prompt(task, s) for s in task.test[:2]]
    batch = vlm.collate([p for p, _ in prompts], [i for _, i in prompts], answers=["red", "blue"])
    loss = vlm.model(**batch).loss
    loss.backward()
    grads = [p.grad for n, p in vlm.model.named_parameters() if "lora_A" in n]
    assert grads and all(g is not None for g in grads)


def test_save_round_trip(llava_path, tmp_path):
    task = _task()
    vlm = load_model(llava_path)
    vlm.save(tmp_path / "saved")
    again = load_model(str(tmp_path / "saved"))
    p = [vlm.build_prompt(task, s) for s in task.test[:2]]
    with torch.inference_mode():
        a = vlm.model(**vlm.collate([x for x, _ in p], [i for _, i in p])).logits
        b = again.model(**again.collate([x for x, _ in p], [i for _, i in p])).logits
    assert torch.allclose(a, b)
