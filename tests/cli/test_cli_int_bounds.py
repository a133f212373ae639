"""Every integer option of every command has an upper bound: a value too large for its field is exit 2."""

import importlib

import click
from click.testing import CliRunner

from mint.cli import COMMANDS, main
from mint.cli.types import MAX_INT


def _int_options():
    for name, module in COMMANDS.items():
        for param in importlib.import_module(module).command.params:
            if isinstance(param.type, click.types.IntParamType):
                yield name, param


def test_every_integer_option_is_bounded():
    found = list(_int_options())
    assert len(found) > 20
    unbounded = [
        f"{name} {param.opts[0]}"
        for name, param in found
        if not isinstance(param.type, click.IntRange) or param.type.max is None or param.type.max > MAX_INT
    ]
    assert unbounded == []


def test_too_large_integer_is_one_error_line(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(
        main,
        ["tune", "--suite", "builtin:mini", "--model", "tiny", "--groups", "g.json", "--out", str(out)]
        + ["--batch-size", str(2**64)],
    )
    assert res.exit_code == 2
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--batch-size" in errors[0] and "Traceback" not in res.output
    assert not out.exists()
