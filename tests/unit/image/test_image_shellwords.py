import pytest

from dockyard.image.errors import InvalidArgument
from dockyard.image.shellwords import env_map, expand, split_words

ENV = {"A": "1", "EMPTY": "", "P": "/bin"}


def test_split_words_keeps_quotes_for_expand():
    assert split_words("  a=1   b=\"x y\" c='p q'  d=e\\ f ") == [
        "a=1",
        'b="x y"',
        "c='p q'",
        "d=e\\ f",
    ]
    assert split_words('""') == ['""']
    assert split_words("") == []


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "1"),
        ("${A}x", "1x"),
        ("$Ax", ""),  # the name runs to the first non-name character
        ("$1", ""),
        ("$", "$"),
        ("a$", "a$"),
        ("$-", "$-"),
        ("${MISSING:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${MISSING-d}", "d"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${MISSING:-$P/x}", "/bin/x"),
        ('"$A and $P"', "1 and /bin"),
        ("'$A'", "$A"),
        ('"a\\"b\\$A\\\\c\\d"', 'a"b$A\\c\\d'),
        ("a\\ b\\$A", "a b$A"),
        ("trailing\\", "trailing"),
    ],
)
def test_expand(word, expected):
    assert expand(word, ENV) == expected


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${", "missing '}'"),
        ("${A", "missing '}'"),
        ("${A:-x", "looking for matching }"),
        ("${}", "bad substitution"),
        ("${:x}", "bad substitution"),
        ("${A*x}", r"unsupported modifier \(\*\)"),
        ("${MISSING?}", "MISSING: is not allowed to be unset"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("${MISSING:?custom}", "MISSING: custom"),
    ],
)
def test_expand_errors(word, message):
    with pytest.raises(InvalidArgument, match=message):
        expand(word, ENV)


def test_env_map():
    assert env_map(["A=1", "B=x=y", "A=2", "C"]) == {"A": "2", "B": "x=y", "C": ""}
    assert env_map(None) == {}
