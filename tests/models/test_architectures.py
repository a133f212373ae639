"""Each architecture's wrapper (tiny random LLaVA, Idefics3, PaliGemma, Qwen2-VL built from configs) answers,
ablates, extracts features and masks labels to the answer tokens."""

from __future__ import annotations

import pytest
import torch
from helpers_models import MAKERS
from PIL import Image

from mint.models import load_model
from mint.models.scoring import answer_logprobs, answer_logprobs_expanded
from mint.tasks.schema import Sample, Task

ARCHS = sorted(MAKERS)
COLORS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30)}


def _image(color: str, size: int = 64) -> Image.Image:
    img = Image.new("RGB", (size, size), (255, 255, 255))
    img.paste(COLORS[color], (16, 16, 48, 48))
    return img


def _samples() -> list[Sample]:
    texts = ["is there a teal circle ?", "what color is the shape ?", "red blue digit", "a green triangle ."]
    return [
        Sample(f"s{i}", texts[i % 4], c, _image(c), {})
        for i, c in enumerate(["red", "blue", "green", "red", "blue"])
    ]


CLOSED = Task("closed", "answer with one word .", [], _samples(), answers=["red", "blue", "green yes", "no"])
OPEN = Task("open", "answer with one word .", [], _samples())


@pytest.fixture(scope="module", params=ARCHS)
def vlm(request, tmp_path_factory):
    path = MAKERS[request.param](tmp_path_factory.mktemp(request.param))
    model = load_model(path)
    assert model.model_type == request.param
    return model


def test_answers_closed_task_in_every_mode(vlm):
    for mode in ("both", "image", "text"):
        preds = vlm.predict(CLOSED, CLOSED.test, mode, batch_size=2, progress=False)
        assert len(preds) == len(CLOSED.test)
        assert set(preds) <= set(CLOSED.answers)


def test_open_task_generates_text(vlm):
    vlm.max_new_tokens = 3
    preds = vlm.predict(OPEN, OPEN.test[:3], "both", batch_size=2, progress=False)
    assert len(preds) == 3 and all(isinstance(p, str) for p in preds)
    assert any(p for p in preds)  # a random model still emits ordinary word tokens


def test_ablation_prompts_and_batches(vlm):
    sample = CLOSED.test[0]
    both, ims_both = vlm.build_prompt(CLOSED, sample, "both")
    image, ims_image = vlm.build_prompt(CLOSED, sample, "image")
    text, ims_text = vlm.build_prompt(CLOSED, sample, "text")
    assert "teal circle" in both and "teal circle" in text
    assert "teal circle" not in image  # image-only drops the sample text ...
    assert all("answer with one word" in p for p in (both, image, text))  # ... and keeps the instruction
    assert len(ims_both) == len(ims_image) == 1
    batch = vlm.collate([text], [ims_text])
    if vlm.requires_image:  # PaliGemma: a blank image of the same size
        assert len(ims_text) == 1 and ims_text[0].size == sample.image.size
        assert len(set(ims_text[0].getdata())) == 1
        assert "pixel_values" in batch
    else:
        assert ims_text == []
        assert "pixel_values" not in batch
        assert vlm.image_token_id not in batch["input_ids"]
    img_batch = vlm.collate([image], [ims_image])
    assert "pixel_values" in img_batch
    assert (img_batch["input_ids"] == vlm.image_token_id).sum() > 0


def test_collate_masks_labels_to_answer_tokens(vlm):
    samples = CLOSED.test[:3]
    prompts = [vlm.build_prompt(CLOSED, s, "both") for s in samples]
    answers = ["red", "green yes", "no"]
    bare = vlm.collate([p for p, _ in prompts], [i for _, i in prompts])
    batch = vlm.collate([p for p, _ in prompts], [i for _, i in prompts], answers=answers)
    for r, ((p, _), a) in enumerate(zip(prompts, answers)):
        n_prompt = int(bare["attention_mask"][r].sum())
        ans = vlm.answer_ids(a, p)
        assert ans[-1] == vlm.tokenizer.eos_token_id and len(ans) >= 2
        labels = batch["labels"][r]
        keep = (labels != -100).nonzero().flatten().tolist()
        assert keep == list(range(n_prompt, n_prompt + len(ans)))
        assert labels[keep].tolist() == ans
        assert batch["input_ids"][r, :n_prompt].tolist() == bare["input_ids"][r, :n_prompt].tolist()
        assert batch["input_ids"][r, keep].tolist() == ans
        assert int(batch["attention_mask"][r].sum()) == n_prompt + len(ans)
        if "token_type_ids" in batch:  # PaliGemma: the answer is the suffix
            assert batch["token_type_ids"][r, keep].eq(1).all()
            assert batch["token_type_ids"][r, :n_prompt].eq(0).all()
    loss = vlm.model(**batch).loss
    assert torch.isfinite(loss)


def _reference_logprob(vlm, prompt, images, answer) -> float:
    batch = vlm.collate([prompt], [images], answers=[answer])
    labels = batch.pop("labels")
    logits = vlm.model(**batch).logits[0, :-1].float()
    target = labels[0, 1:]
    lp = torch.log_softmax(logits, -1)
    m = target != -100
    return float(lp[m].gather(-1, target[m].unsqueeze(-1)).sum())


def test_batched_scoring_equals_per_answer_passes(vlm):
    samples = CLOSED.test[:3]
    prompts = [vlm.build_prompt(CLOSED, s, mode) for s, mode in zip(samples, ("both", "image", "both"))]
    with torch.inference_mode():
        got = answer_logprobs(vlm, [p for p, _ in prompts], [i for _, i in prompts], CLOSED.answers)
        single = answer_logprobs_expanded(
            vlm, [p for p, _ in prompts], [i for _, i in prompts], CLOSED.answers
        )
        for r, (p, ims) in enumerate(prompts):
            for c, a in enumerate(CLOSED.answers):
                ref = _reference_logprob(vlm, p, ims, a)
                assert got[r, c].item() == pytest.approx(ref, abs=2e-4)
                assert single[r, c].item() == pytest.approx(ref, abs=2e-4)


def test_features_shapes_and_modalities(vlm):
    feats = vlm.features(CLOSED, CLOSED.test, batch_size=2)
    d = vlm.model.config.get_text_config().hidden_size
    assert set(feats) == {"image", "text"}
    for m in ("image", "text"):
        assert feats[m].shape == (len(CLOSED.test), d)
        assert feats[m].dtype.name == "float32"
    # red (samples 0, 3) vs blue (1): the image feature follows the image
    img = feats["image"]
    assert abs(img[0] - img[3]).max() < 1e-4 < abs(img[0] - img[1]).max()
    # texts 0 and 4 differ
    assert abs(feats["text"][0] - feats["text"][1]).max() > 1e-5


def test_qwen2vl_image_tokens_expanded(tmp_path):
    vlm = load_model(MAKERS["qwen2_vl"](tmp_path))
    sample = CLOSED.test[0]
    p, ims = vlm.build_prompt(CLOSED, sample, "both")
    batch = vlm.collate([p], [ims])
    n_expected = int(batch["image_grid_thw"].prod(-1).sum()) // vlm.image_processor.merge_size**2
    assert int((batch["input_ids"] == vlm.image_token_id).sum()) == n_expected
    assert batch["mm_token_type_ids"].sum().item() == n_expected
