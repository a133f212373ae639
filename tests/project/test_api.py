"""The notebook API: ``import mint`` stays light, and every verb's docstring example runs, in pipeline order
(the examples continue one another like notebook cells) on the embedded tiny backbone."""

import doctest
import subprocess
import sys

import pytest

import mint
from mint import api


def test_import_mint_loads_neither_torch_nor_the_stages():
    code = "import sys, mint; print('torch' in sys.modules, 'mint.api' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_every_verb_is_documented_with_an_example():
    for verb in mint.VERBS:
        fn = getattr(mint, verb)
        assert fn is getattr(api, verb)
        assert ">>> " in (fn.__doc__ or ""), verb


def test_the_examples_run_in_pipeline_order(tmp_path):
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    shared = {"mint": mint, "tmp": tmp_path}
    for verb in mint.VERBS:
        (test,) = finder.find(getattr(api, verb), f"mint.{verb}", globs={})
        test.globs = shared  # one namespace: each example uses what the previous ones made
        result = runner.run(test, clear_globs=False)
        if result.failed:
            pytest.fail(f"the example of mint.{verb} failed (see the output above)")
    assert (tmp_path / "report" / "report.json").is_file() and (tmp_path / "run" / "eval.json").is_file()


@pytest.mark.parametrize(
    "options,needle",
    [
        ({"device": "cpu", "device_map": "auto"}, "exclude each other"),
        ({"report_to": "nowhere"}, "report_to"),
    ],
)
def test_tune_takes_the_command_lines_loading_and_tracking_options(tmp_path, options, needle):
    """``mint.tune`` goes through the same checks as ``mint tune`` (nothing is loaded before they pass)."""
    from mint.errors import MintError

    grouping = {"method": "all", "groups": {"all": ["vqa_color"]}}
    with pytest.raises(MintError, match=needle):
        mint.tune(grouping, tmp_path / "run", suite="builtin:mini", **options)
    assert not (tmp_path / "run").exists()
