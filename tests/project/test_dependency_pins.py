"""The transformers range in pyproject.toml is the one tested: the installed release lies inside it, and
the API mint relies on (the ``cache`` keyword and output field, which replaced ``past_key_values``) is there."""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version

from packaging.specifiers import SpecifierSet
from paths import REPO

PYPROJECT = REPO / "pyproject.toml"


def _spec(package: str) -> SpecifierSet:
    text = PYPROJECT.read_text(encoding="utf-8")
    found = re.search(rf'"{package}([<>=!~][^"]*)"', text)
    assert found, f"{package} is not pinned in pyproject.toml"
    return SpecifierSet(found.group(1))


def test_transformers_range_has_an_upper_bound_and_holds_the_installed_release():
    spec = _spec("transformers")
    assert any(s.operator in ("<", "<=", "~=", "==") for s in spec), "no upper bound on transformers"
    assert version("transformers") in spec


def test_models_take_the_cache_keyword():
    from transformers import LlamaForCausalLM
    from transformers.modeling_outputs import CausalLMOutputWithPast

    assert "cache" in inspect.signature(LlamaForCausalLM.forward).parameters
    assert "cache" in CausalLMOutputWithPast.__dataclass_fields__
