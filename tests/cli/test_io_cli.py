import json

import pytest
from click.testing import CliRunner

from mint.cli import main
from mint.errors import MintError
from mint.io import atomic_write_json, check_output, read_json, read_jsonl, stamp


def test_stamp_puts_version_and_schema_first():
    out = stamp({"a": 1, "schema": 99})
    assert list(out)[:2] == ["mint_version", "schema"] and out["schema"] == 1 and out["a"] == 1


def test_atomic_write_json_replaces_nan_and_numpy(tmp_path):
    import numpy as np

    p = atomic_write_json(tmp_path / "x.json", {"v": np.float64("nan"), "a": np.arange(3)})
    assert json.loads(p.read_text()) == {"v": None, "a": [0, 1, 2]}
    assert [f.name for f in tmp_path.iterdir()] == ["x.json"]


def test_failed_write_leaves_previous_file(tmp_path):
    p = tmp_path / "x.json"
    atomic_write_json(p, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(p, {"bad": object()})
    assert json.loads(p.read_text()) == {"ok": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["x.json"]


def test_check_output_refuses_existing(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{}")
    with pytest.raises(MintError, match="--force"):
        check_output(p)
    assert check_output(p, force=True) == p


def test_read_jsonl_names_line(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"a": 1}\n\n{"a": \n')
    with pytest.raises(MintError, match=r"p.jsonl:3: malformed JSON"):
        read_jsonl(p)
    p.write_text("")
    with pytest.raises(MintError, match="empty"):
        read_jsonl(p)


def test_read_json_missing(tmp_path):
    with pytest.raises(MintError, match="no such"):
        read_json(tmp_path / "nope.json")


def test_cli_version_and_unknown_command():
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and "mint" in r.output
    r = CliRunner().invoke(main, ["no-such-command"])
    assert r.exit_code == 2


def test_check_output_parent_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(MintError, match="cannot create its folder"):
        check_output(tmp_path / "f" / "out.json")
