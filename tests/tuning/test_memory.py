"""Memory options for real models: gradient checkpointing (same training, recomputed activations), features
that keep one hidden state (equal to the all-layers reference), and one DDP preparation per run."""

from __future__ import annotations

import pytest
import torch
from helpers_models import MAKERS
from helpers_tuning import adapter_tensors, make_tasks

from mint.models import load_model
from mint.tasks.schema import Task
from mint.tuning import TuneConfig, make_accelerator, tune_groups

GROUPS = {"g1": ["color", "presence"], "g2": ["shape"]}
CFG = dict(batch_size=4, epochs=1, lr=0.05, dropout=0.0, checkpoint_every=0)


def test_gradient_checkpointing_trains_the_same_adapters(llava, tmp_path):
    plain, ckpt = load_model(llava), load_model(llava)
    tune_groups(plain, make_tasks(), GROUPS, tmp_path / "a", TuneConfig(**CFG), progress=False)
    on = TuneConfig(**CFG, gradient_checkpointing=True)
    result = tune_groups(ckpt, make_tasks(), GROUPS, tmp_path / "b", on, progress=False)
    assert ckpt.model.get_base_model().is_activation_checkpointing
    assert result["config"]["gradient_checkpointing"] is True
    assert "gradient_checkpointing" not in TuneConfig(**CFG).to_dict()  # older runs resume unchanged
    for g in GROUPS:
        a, b = adapter_tensors(plain.model, g), adapter_tensors(ckpt.model, g)
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=f"{g} {k}")


def test_cli_gradient_checkpointing_flag():
    from click.testing import CliRunner

    from mint.cli import main

    result = CliRunner().invoke(main, ["tune", "--help"])
    assert "--gradient-checkpointing" in result.output


@pytest.mark.parametrize("arch", sorted(MAKERS))
def test_features_equal_the_all_layers_reference(arch, tmp_path):
    from mint.models.features import _pool

    vlm = load_model(MAKERS[arch](tmp_path))
    tasks = make_tasks(n_train=1, n_test=3)
    task = Task("t", tasks[0].instruction, [], tasks[0].test + tasks[1].test[:1], answers=tasks[0].answers)
    feats = vlm.features(task, task.test, batch_size=2)
    with torch.inference_mode():
        for modality, layer in (("image", 0), ("text", -1)):
            for i, s in enumerate(task.test):
                prompt, images = vlm.build_prompt(task, s, modality)
                batch = vlm.collate([prompt], [images])
                hidden = vlm.model(**batch, output_hidden_states=True).hidden_states[layer].float()
                ids = batch["input_ids"]
                is_image = ids == vlm.image_token_id if vlm.image_token_id is not None else ids < 0
                mask = is_image if modality == "image" else batch["attention_mask"].bool() & ~is_image
                want = _pool(hidden, mask)[0].numpy()
                assert abs(feats[modality][i] - want).max() < 1e-4, (arch, modality, i)


def test_the_model_is_prepared_once_per_run_and_each_group_gets_its_own_optimizer(llava, tmp_path):
    accelerator = make_accelerator(TuneConfig(**CFG))
    models, optimizers = [], []
    real_model, real_optimizer = accelerator.prepare_model, accelerator.prepare_optimizer

    def spy_model(model, *args, **kwargs):
        models.append(kwargs.get("evaluation_mode"))
        return real_model(model, *args, **kwargs)

    def spy_optimizer(optimizer, *args, **kwargs):
        optimizers.append(optimizer)
        return real_optimizer(optimizer, *args, **kwargs)

    accelerator.prepare_model, accelerator.prepare_optimizer = spy_model, spy_optimizer
    groups = {"g1": ["color"], "g2": ["presence"], "g3": ["shape"]}
    tune_groups(
        load_model(llava),
        make_tasks(),
        groups,
        tmp_path / "r",
        TuneConfig(**CFG),
        accelerator=accelerator,
        progress=False,
    )
    assert models == [True]  # once, never wrapped (evaluation_mode: placement and mixed precision only)
    assert len(optimizers) == 3 and len({id(o) for o in optimizers}) == 3
