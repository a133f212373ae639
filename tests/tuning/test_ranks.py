"""Ranks: the launch hint and the refused one-process accelerate launch, commands that would run redundantly
under several processes, and the dropout seed policy (each rank its own masks; rank 0 unchanged)."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from mint.cli import main
from mint.errors import MintError
from mint.models.devices import LAUNCH_HINT, single_process
from mint.tuning import TuneConfig, make_accelerator
from mint.tuning import trainer as trainer_mod
from mint.tuning.trainer import launch_info, launcher_processes, process_seed


def test_launch_hint_names_the_launchers_that_start_several_processes():
    assert "--multi_gpu" in LAUNCH_HINT and "torchrun --nproc_per_node" in LAUNCH_HINT
    assert "--cpu" not in LAUNCH_HINT


@pytest.mark.parametrize(
    "cmdline, want",
    [
        (["python", "/usr/bin/accelerate", "launch", "--cpu", "--num_processes", "2", "-m", "mint.cli"], 2),
        (["accelerate", "launch", "--num-processes=4", "x.py"], 4),
        (["python", "-m", "accelerate.commands.launch", "--num_processes", "1", "x.py"], 1),
        (["accelerate", "launch", "x.py"], None),
        (["python", "-m", "torch.distributed.run", "--nproc_per_node", "2", "x.py"], None),
        ([], None),
    ],
)
def test_launcher_processes(cmdline, want):
    assert launcher_processes(cmdline) == want


def test_one_process_started_for_several_is_refused(monkeypatch):
    accelerator = make_accelerator(TuneConfig(), cpu=True)
    cmd = ["python", "/usr/bin/accelerate", "launch", "--cpu", "--num_processes", "2", "-m", "mint.cli"]
    monkeypatch.setattr(trainer_mod, "_parent_cmdline", lambda: cmd)
    with pytest.raises(MintError, match="asked for 2 processes but started one.*--multi_gpu"):
        launch_info(accelerator)
    monkeypatch.setattr(trainer_mod, "_parent_cmdline", lambda: cmd[:4] + ["1"])
    assert launch_info(accelerator) == (True, 0, 1)


def test_commands_that_do_not_split_their_work_refuse_several_processes(monkeypatch, tmp_path):
    single_process("x")  # one process: fine
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(MintError, match="launched as 2"):
        single_process("mint evaluate")
    for args in (
        ["evaluate", str(tmp_path)],
        ["run", str(tmp_path / "config.yaml")],
        ["demo", "--out", str(tmp_path / "d")],
        ["cluster", str(tmp_path / "p.json"), "--out", str(tmp_path / "g.json")],
        ["profile", "--suite", "builtin:mini", "--out", str(tmp_path / "p.json")],
        ["plot", str(tmp_path / "p.json"), "--out", str(tmp_path / "figs")],
        ["compare-labels", str(tmp_path / "p.json"), "--reference", "hemm"],
        ["export", str(tmp_path / "run"), "--out", str(tmp_path / "bundle")],
        [
            "route",
            "--profiles",
            str(tmp_path / "p.json"),
            "--groups",
            str(tmp_path / "g.json"),
            "--out",
            str(tmp_path / "r.json"),
        ],
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and "runs in one process, but it was launched as 2" in result.output, (
            args,
            result.output,
        )


def test_each_rank_draws_its_own_dropout_masks():
    assert process_seed(7, 0) == 7  # rank 0: a one-process run is unchanged
    masks = {}
    for rank in (0, 1):
        torch.manual_seed(process_seed(7, rank))
        masks[rank] = torch.nn.functional.dropout(torch.ones(64), 0.5) > 0
    assert not torch.equal(masks[0], masks[1])
    assert len({process_seed(s, r) for s in range(8) for r in range(8)}) == 64  # no two (seed, rank) collide


def test_the_trainer_seeds_each_group_by_rank(monkeypatch, tmp_path):
    from helpers_models import make_tiny_llava
    from helpers_tuning import make_tasks

    from mint.models import load_model
    from mint.tuning import tune_groups

    calls = []
    real = trainer_mod.process_seed
    monkeypatch.setattr(trainer_mod, "process_seed", lambda s, r: calls.append((s, r)) or real(s, r))
    cfg = TuneConfig(batch_size=8, epochs=1, dropout=0.1, checkpoint_every=0, seed=3)
    model = make_tiny_llava(tmp_path / "m")
    tune_groups(
        load_model(model),
        make_tasks(n_train=4),
        {"g1": ["color"], "g2": ["shape", "presence"]},
        tmp_path / "r",
        cfg,
        progress=False,
    )
    assert calls == [(3, 0), (4, 0)]
