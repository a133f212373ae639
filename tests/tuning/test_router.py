"""mint.Router: a batch mixing tasks and adapters answers each sample as its own adapter alone would; the
mixed forward pass gives each row its adapter's logits."""

from __future__ import annotations

import pytest
import torch
from helpers_models import make_tiny_llava
from helpers_tuning import make_tasks

import mint
from mint.models import load_model
from mint.tasks.schema import Task
from mint.tuning import TuneConfig, active_adapter, tune_groups
from mint.tuning.serving import Item, row_adapters

GROUPS = {"g1": ["color", "presence"], "g2": ["shape", "open"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("router")
    vlm = load_model(make_tiny_llava(root / "models"), max_new_tokens=2)
    tasks = make_tasks(n_train=8, n_test=6)
    color = tasks[0]
    tasks.append(Task(name="open", instruction="say a word .", train=color.train, test=color.test))
    tune_groups(vlm, tasks, GROUPS, root / "run", TuneConfig(batch_size=4, epochs=2, lr=0.05, dropout=0.0,
                checkpoint_every=0), progress=False)  # fmt: skip
    return vlm, tasks, root / "run"


def test_mixed_batch_equals_per_adapter_answers(run):
    vlm, tasks, folder = run
    router = mint.Router(folder, vlm, batch_size=8, tasks=tasks)
    expected, items = {}, []
    for t in tasks:
        for adapter in (router.adapter_for(t.name), None):
            with active_adapter(router.vlm, adapter):
                expected[t.name, adapter] = router.vlm.predict(
                    t, t.test, "both", batch_size=3, progress=False
                )
    # interleaved: every batch holds several tasks, both adapters and bare-backbone rows
    for i in range(len(tasks[0].test)):
        for t in tasks:
            items += [Item(t, t.test[i], router.adapter_for(t.name)), Item(t, t.test[i], None)]
    got = router.answer_items(items)
    for item, answer in zip(items, got):
        assert answer == expected[item.task.name, item.adapter][item.task.test.index(item.sample)]
    # beam search: each prompt's beams are rows of their own, all through that prompt's adapter
    router.vlm.num_beams = 2
    try:
        opened = [it for it in items if it.task.name == "open"]
        beams = {}
        for adapter in ("g2", None):
            with active_adapter(router.vlm, adapter):
                beams[adapter] = router.vlm.predict(tasks[-1], tasks[-1].test, "both", progress=False)
        got = router.answer_items(opened)
        assert got == [beams[it.adapter][tasks[-1].test.index(it.sample)] for it in opened]
    finally:
        router.vlm.num_beams = 1
    # the public form: (task, image, text) requests
    requests = [(t.name, t.test[0].image, t.test[0].text) for t in tasks]
    assert router.answer(requests) == [expected[t.name, router.adapter_for(t.name)][0] for t in tasks]


def test_mixed_forward_gives_each_row_its_adapter(run):
    vlm, tasks, folder = run
    router = mint.Router(folder, vlm, tasks=tasks)
    model = router.vlm
    task, sample = tasks[0], tasks[0].test[0]
    prompt, images = model.build_prompt(task, sample)
    batch = model.collate([prompt] * 3, [images] * 3)
    order = ["g1", "g2", None]
    with torch.inference_mode():
        with row_adapters(model, order):
            mixed = model.model(**batch).logits
        alone = []
        for name in order:
            with active_adapter(model, name):
                alone.append(model.model(**batch).logits[0])
    for row, ref in zip(mixed, alone):
        torch.testing.assert_close(row, ref, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(alone[0], alone[1]) and not torch.allclose(alone[0], alone[2])
