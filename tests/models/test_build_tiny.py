"""`tools/build_tiny.py`, the developer script that builds the embedded `tiny` backbone, lives outside the
package; the package ships the built files, and the script's vocabulary is the shipped tokenizer's."""

from __future__ import annotations

import json

from helpers_embedded import assert_package_data_covers
from paths import REPO, load_tool

from mint.models.loading import TINY_DIR
from mint.models.wordtok import CHAT_TEMPLATE, build_word_tokenizer

SCRIPT = REPO / "tools" / "build_tiny.py"


def _load_script():
    return load_tool("build_tiny")


def test_the_script_is_not_in_the_package_and_its_command_is_recorded():
    package = REPO / "mint"
    assert SCRIPT.is_file() and not list(package.rglob("build_tiny*"))
    assert json.loads((TINY_DIR / "build_info.json").read_text())["command"].startswith(
        "python tools/build_tiny.py --seed 0 "
    )


def test_the_scripts_vocabulary_is_the_shipped_tokenizers():
    """Every word of every built-in task (and of the pretext) has its own token, and a rebuild with the
    recorded command gets the very tokenizer that the shipped weights were trained with."""
    tokenizer = build_word_tokenizer(_load_script().vocabulary(), chat_template=CHAT_TEMPLATE)
    shipped = json.loads((TINY_DIR / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    assert tokenizer.get_vocab() == shipped


def test_package_data_covers_every_built_file():
    assert_package_data_covers(TINY_DIR)
