import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.canonical import CanonicalError, canonical_bytes, is_canonical, parse_canonical


@pytest.mark.parametrize(
    "value, expected",
    [
        ({"b": 1, "a": [True, None, "x"]}, b'{"a":[true,null,"x"],"b":1}'),
        ({"name": "评标室"}, '{"name":"评标室"}'.encode()),
        ({"s": 'q"\\\n\t\x01'}, b'{"s":"q\\"\\\\\\n\\t\\u0001"}'),
        ({"emoji": "\U0001f600"}, '{"emoji":"\U0001f600"}'.encode()),
        ([], b"[]"),
        ({"n": -(2**53 - 1)}, b'{"n":-9007199254740991}'),
    ],
)
def test_canonical_form_is_exact(value, expected):
    assert canonical_bytes(value) == expected


@pytest.mark.parametrize(
    "value",
    [{"f": 1.5}, {"n": 2**53}, {1: "x"}, {"键": 1}, {"s": "\ud800"}, {"b": b"bytes"}],
)
def test_values_without_a_canonical_form_are_refused(value):
    with pytest.raises(CanonicalError):
        canonical_bytes(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127), max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_bytes_round_trip(value):
    data = canonical_bytes(value)
    assert json.loads(data) == value
    assert is_canonical(data)
    assert canonical_bytes(json.loads(data)) == data


def test_non_canonical_bytes_are_recognised():
    assert not is_canonical(b'{"b":1, "a":2}')
    assert not is_canonical(b'{"b":1,"a":2}')
    assert not is_canonical(b'{"a":"\\u8bc4"}')  # escaped CJK is not the canonical spelling


@given(json_values)
def test_the_centers_parser_takes_every_canonical_text(value):
    assert parse_canonical(canonical_bytes(value).decode()) == value


RAW_SURROGATE = '{"s":"' + chr(0xD800) + '"}'


@pytest.mark.parametrize("text", ['{"f":1.5}', '{"n":9007199254740992}', '{"键":1}', '{"b":1,"a":2}', '{"a": 1}',
                                  '{"a":"\\u8bc4"}', '{"s":"\\ud800"}', RAW_SURROGATE, '{"a":1,"a":2}', "[1,2"],
                         ids=["float", "big-int", "non-ascii-key", "unsorted", "space", "escaped-cjk", "escaped-surrogate",
                              "raw-surrogate", "duplicate-key", "truncated"])
def test_the_centers_parser_refuses_what_has_no_canonical_form(text):
    with pytest.raises(ValueError):
        parse_canonical(text)
