"""Where things are, for tests in any sub-folder: the repository root, the tests folder and its data."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DATA = TESTS / "data"
