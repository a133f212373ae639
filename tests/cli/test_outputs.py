"""Outputs through the real CLI: never replaced without --force, even when the file appears while the command
runs (a concurrent writer); created with the user's umask; a failed command leaves no new folder behind."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest
from click.testing import CliRunner

import mint.cli.cluster_cmd as cluster_cmd
from mint.cli import main
from mint.clustering.synthetic import planted_profiles
from mint.errors import MintError
from mint.io import atomic_write_text


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_error(res, *needles):
    assert res.exit_code == 2, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in res.output, res.output
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture()
def prof(tmp_path):
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps(planted_profiles(sizes=(2, 2, 2), seed=1)))
    return path


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_file_created_meanwhile_is_kept(prof, tmp_path, monkeypatch):
    out = tmp_path / "groups.json"
    real = cluster_cmd.group

    def group_then_someone_writes(*a, **k):
        result = real(*a, **k)
        out.write_text("theirs")  # another process creates the output while this one works
        return result

    monkeypatch.setattr(cluster_cmd, "group", group_then_someone_writes)
    _one_error(_cli("cluster", prof, "--out", out, "--bootstrap", 0), str(out), "--force")
    assert out.read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    assert _cli("cluster", prof, "--out", out, "--bootstrap", 0, "--force").exit_code == 0
    assert json.loads(out.read_text())["method"] == "mint"


def test_concurrent_writers_one_wins(tmp_path):
    """Many writers of one path without replace: exactly one succeeds, the others fail and leave it."""
    path, n = tmp_path / "out.json", 8
    barrier, outcomes = threading.Barrier(n), []

    def write(i):
        barrier.wait()
        try:
            atomic_write_text(path, f"writer {i}", replace=False)
            outcomes.append(("ok", i))
        except MintError as e:
            outcomes.append(("refused", str(e)))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for kind, i in outcomes if kind == "ok"]
    assert len(winners) == 1 and path.read_text() == f"writer {winners[0]}"
    assert all("already exists" in m for kind, m in outcomes if kind == "refused")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_predict_keeps_an_existing_sidecar(tmp_path):
    out = tmp_path / "preds.jsonl"
    sidecar = tmp_path / "preds.jsonl.meta.json"
    sidecar.write_text("mine")
    res = _cli("predict", "--suite", "builtin:mini", "--model", "tiny", "--out", out, "--no-progress")
    _one_error(res, str(sidecar), "--force")
    assert sidecar.read_text() == "mine" and not out.exists()


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_follow_the_umask(prof, tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        groups = tmp_path / "groups.json"
        assert _cli("cluster", prof, "--out", groups, "--bootstrap", 0).exit_code == 0
        figures = tmp_path / "figures"
        res = _cli("plot", prof, "--groups", groups, "--out", figures, "--dpi", 30)
        assert res.exit_code == 0, res.output
    finally:
        os.umask(old)
    written = [groups, *figures.iterdir()]
    assert len(written) >= 4
    assert {p.name: _mode(p) for p in written} == {p.name: mode for p in written}


def test_failed_command_leaves_no_new_folder(tmp_path):
    bad = tmp_path / "profiles.json"
    bad.write_text("{}")
    res = _cli("cluster", bad, "--out", tmp_path / "new" / "deeper" / "groups.json")
    _one_error(res, str(bad))
    assert not (tmp_path / "new").exists()
    res = _cli("plot", bad, "--out", tmp_path / "figs" / "x")
    _one_error(res, str(bad))
    assert not (tmp_path / "figs").exists()


def test_unwritable_output_folder(prof, tmp_path):
    (tmp_path / "file").write_text("")
    _one_error(_cli("cluster", prof, "--out", tmp_path / "file" / "groups.json"), "not a folder")
