import pytest

from mint.errors import MintError
from mint.profiling.similarity import (
    available_similarities,
    get_similarity,
    normalize_answer,
    parse_number,
    register_similarity,
)


@pytest.mark.parametrize(
    "raw, norm",
    [
        ("The Blue!", "blue"),
        ("  a   cat, sitting. ", "cat sitting"),
        ("An apple", "apple"),
        ("U.S.A.", "usa"),
        ("it's", "its"),
        ("red/blue", "red blue"),
        ("3.5", "3.5"),
        ("1,200", "1,200"),
        ("A", "a"),  # a choice letter that is only an article is kept
        ("(b)", "b"),
        ("theatre", "theatre"),  # articles only as whole words
    ],
)
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


def test_exact_match():
    exact = get_similarity("exact")
    assert exact("The Cat.", "cat") == 1.0
    assert exact("cat", "cats") == 0.0
    assert exact("A", "B") == 0.0 and exact("(a)", "A") == 1.0
    assert exact("3.5", "35") == 0.0


def test_token_f1():
    f1 = get_similarity("f1")
    assert f1("the red car", "a red bus") == pytest.approx(0.5)
    assert f1("red car parked", "red car") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert f1("dog", "cat") == 0.0
    assert f1("", "") == 1.0 and f1("", "dog") == 0.0
    assert f1("big big dog", "big dog") == pytest.approx(0.8)  # tokens counted with multiplicity


def test_numeric():
    num = get_similarity("numeric")
    assert num("7", "seven") == 1.0
    assert num("7.0", "7") == 1.0
    assert num("twenty-one", "21") == 1.0
    assert num("1,200", "1200") == 1.0
    assert num("100", "101") == 0.0
    assert num("The Cat", "cat") == 1.0  # not numbers: exact match
    assert num("7", "cat") == 0.0
    loose = get_similarity("numeric:0.05")
    assert loose("100", "104") == 1.0 and loose("100", "110") == 0.0
    assert parse_number("two hundred and five") == 205
    assert parse_number("50%") == 50 and parse_number("-3.5") == -3.5
    assert parse_number("seven cats") is None and parse_number("hello") is None


def test_registry_add_and_errors():
    assert {"exact", "f1", "numeric"} <= set(available_similarities())
    name = "test_first_letter"

    def first_letter(a: str, b: str) -> float:
        return float(a[:1].lower() == b[:1].lower())

    register_similarity(name, first_letter, replace=True)
    assert get_similarity(name)("Apple", "avocado") == 1.0
    with pytest.raises(MintError, match="already registered"):
        register_similarity(name, first_letter)
    with pytest.raises(MintError, match="unknown similarity 'nope'.*exact"):
        get_similarity("nope")
    with pytest.raises(MintError, match="numeric:REL_TOL"):
        get_similarity("numeric:abc")
    with pytest.raises(MintError, match="cannot import"):
        get_similarity("no_such_module_xyz:fn")
    # a user function given as package.module:function
    assert get_similarity("mint.profiling.similarity:token_f1")("red car", "red car") == 1.0
