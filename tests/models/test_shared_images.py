"""All modes at once (`predict_modes`): each image decoded once, processed once where the architecture
allows, and the same answers as one mode at a time."""

from __future__ import annotations

import pytest
import torch
from helpers_models import MAKERS
from PIL import Image

from mint.models import load_model
from mint.models.architectures import processor_encode
from mint.models.shared_images import ProcessedImageMemo, sharing_images
from mint.tasks.schema import ImageSource, Sample, Task

SHARED = {"llava", "paligemma"}  # per-image processed tensors


class CountingImage(ImageSource):
    """An image source that counts its decodes."""

    loads = 0

    def __init__(self, color: tuple[int, int, int]) -> None:
        self.color = color

    def load(self) -> Image.Image:
        CountingImage.loads += 1
        img = Image.new("RGB", (40, 40), (255, 255, 255))
        img.paste(self.color, (8, 8, 32, 32))
        return img


def _task(n: int = 7) -> Task:
    colors = [(220, 30, 30), (30, 30, 220), (30, 200, 30)]
    samples = [
        Sample(
            f"s{i}",
            f"is it {['red', 'blue', 'green'][i % 3]} ?",
            "yes" if i % 2 else "no",
            CountingImage(colors[i % 3]),
            {},
        )
        for i in range(n)
    ]
    return Task("t", "answer yes or no .", [], samples, answers=["yes", "no", "maybe so"])


@pytest.fixture(scope="module", params=sorted(MAKERS))
def vlm(request, tmp_path_factory):
    return load_model(MAKERS[request.param](tmp_path_factory.mktemp(request.param)))


def test_all_modes_equal_one_mode_at_a_time(vlm):
    task = _task()
    together = vlm.predict_modes(task, task.test, batch_size=3, progress=False)
    for mode in ("both", "image", "text"):
        assert together[mode] == vlm.predict(task, task.test, mode, batch_size=3, progress=False), mode


def test_each_image_is_decoded_once_for_all_modes(vlm):
    task = _task()
    CountingImage.loads = 0
    vlm.predict_modes(task, task.test, batch_size=3, progress=False)
    assert CountingImage.loads == len(task.test)
    CountingImage.loads = 0
    vlm.predict(task, task.test, "text", batch_size=3, progress=False)
    assert CountingImage.loads == (len(task.test) if vlm.requires_image else 0)  # a blank needs the size only


def test_processed_images_are_shared_and_identical(vlm):
    task = _task(4)
    images = [[s.image] for s in task.test]
    prompts = {m: [vlm.build_prompt(task, s, m)[0] for s in task.test] for m in ("both", "image")}
    alone = {m: processor_encode(vlm, prompts[m], images) for m in prompts}
    with sharing_images(vlm) as memo:
        shared = {m: processor_encode(vlm, prompts[m], images) for m in prompts}
        if vlm.model_type in SHARED:
            assert isinstance(memo, ProcessedImageMemo)
            assert (memo.misses, memo.hits) == (4, 4)  # the image-only prompts reuse the both prompts' images
        else:
            assert memo is None
    assert not isinstance(
        getattr(vlm.processor, "image_processor", None), ProcessedImageMemo
    )  # unwrapped again
    for m in prompts:
        assert alone[m].keys() == shared[m].keys()
        for k, v in alone[m].items():
            if isinstance(v, torch.Tensor):
                assert torch.equal(v, shared[m][k]), (m, k)


def test_memo_steps_aside_for_outputs_not_per_image():
    class Grid:
        def __call__(self, images, **kw):
            return {"pixel_values": torch.zeros(1, len(images)), "calls": None}

    memo = ProcessedImageMemo(Grid())
    img = Image.new("RGB", (4, 4))
    assert memo([img, img])["pixel_values"].shape == (1, 2)
    assert memo.hits == 0 and memo.misses == 0


def test_shared_prefix_scores_equal_separate_passes(vlm):
    from mint.models.scoring import answer_logprobs, answer_logprobs_shared

    task = _task(5)
    samples = list(task.test)
    images = [[s.image] for s in samples]
    both = [vlm.build_prompt(task, s, "both")[0] for s in samples]
    image = [vlm.build_prompt(task, s, "image")[0] for s in samples]
    with torch.inference_mode():
        shared = answer_logprobs_shared(vlm, both, image, images, task.answers)
        if not vlm.arch.shared_prefix:  # prefix-LM (PaliGemma) or no prompt cache (Qwen2-VL): not shared
            assert shared is None
            return
        assert shared is not None
        for got, prompts in zip(shared, (both, image)):
            want = answer_logprobs(vlm, prompts, images, task.answers)
            assert torch.allclose(got, want, atol=2e-4), (got - want).abs().max()


def test_shared_prefix_declines_when_an_image_follows_the_split(vlm):
    from mint.models.scoring import answer_logprobs_shared

    if not vlm.arch.shared_prefix:
        pytest.skip("architecture does not share prefixes")
    task = _task(2)
    s = task.test[0]
    two_images = vlm.build_prompt(task, s, "both", demos=[task.test[1]])  # demo image, then the query image
    images = [two_images[1]]
    # another instruction: the prompts differ before the second image, so no split keeps both in the prefix
    other = vlm.build_prompt(Task("u", "something else entirely .", [], []), s, "both", demos=[task.test[1]])[
        0
    ]
    with torch.inference_mode():
        assert answer_logprobs_shared(vlm, [two_images[0]], [other], images, task.answers) is None
