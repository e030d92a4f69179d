"""The plain YAML path gives exactly what the full loader gives, or leaves the text to it."""

import math
from datetime import date

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from articles import loader, plain_yaml

# Scalars whose meaning depends on YAML 1.1's implicit typing, written plain and quoted.
TRICKY_SCALARS = [
    "yes", "No", "on", "OFF", "y", "true", "False", "~", "null", "NULL", "", "0", "-0", "017",
    "0o17", "0x1F", "1_000", "+12", "12:30", "190:20:30", "1.5", "1e3", "6.8523015e+5", ".inf",
    "-.Inf", ".nan", "2020-08-14", "2020-08-14T08:40:00Z", "2020-08-14 08:40:00.5 +02:00",
    "2020-13-45", "=", "<<", "a: b", "#", "- x", "[1]", "Ünïcode ✓", "tab\there", "line\nbreak",
]  # fmt: skip

# Everything else YAML can say that front matter does not: the full loader decides.
UNUSUAL_TEXTS = [
    "a: &x [1]\nb: *x\n",
    "a: &x 1\nb: *x\n",
    "a: &x 1\n",
    "a: *undefined\n",
    "a: !!binary aGk=\n",
    "a: !!str 1\n",
    "a: !custom x\n",
    "a: !!python/object:os.system x\n",
    "a: !!set {x, y}\n",
    "base: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n",
    "<<: {a: 1}\n",
    "=: value\n",
    "? [a]\n: 1\n",
    "? {a: 1}\n: 2\n",
    "a: 1\n---\nb: 2\n",
    "%YAML 1.1\n---\na: 1\n",
    "%TAG !e! tag:example.com,2000:\n---\na: 1\n",
    "title: [unclosed\n",
    "k:\n" + "".join("  " * depth + f"k{depth}:\n" for depth in range(1, 30)),
    "k: " + "[" * 50 + "]" * 50 + "\n",
]


def outcome(load_yaml, text):
    """What a loader gives: the data, or the error it raises."""
    try:
        return ("data", load_yaml(text))
    except loader.FileError as exc:
        return ("refused", exc.field, exc.message)


def full_result(text):
    return outcome(loader._load_any_yaml, text)


def same(left, right):
    """Equal data of equal types all the way down, NaN included."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return list(left) == list(right) and all(
            same(key, other) and same(left[key], right[other])
            for key, other in zip(left, right, strict=True)
        )
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, float) and math.isnan(left):
        return math.isnan(right)
    return left == right


def assert_same_as_full_loader(text):
    full = full_result(text)
    data = plain_yaml.load(text)
    if data is not plain_yaml.UNUSUAL:
        kind, *expected = full
        assert kind == "data", f"the full loader refuses {text!r}: {expected}"
        assert same(data, expected[0]), f"{text!r}: {data!r} != {expected[0]!r}"
    assert full == outcome(loader._load_yaml, text)
    return data


@pytest.mark.parametrize("scalar", TRICKY_SCALARS)
def test_scalars_are_typed_as_the_safe_loader_types_them(scalar):
    for line in (f"value: {scalar}\n", f"value: {yaml.safe_dump(scalar).splitlines()[0]}\n"):
        data = assert_same_as_full_loader(line)
        if data is plain_yaml.UNUSUAL:
            # Only values the full loader cannot build, or special keys, go there.
            assert full_result(line)[0] != "data" or scalar in ("=", "<<")
    # Keys resolve too: `yes:` is the key True, `1:` the key 1.
    assert_same_as_full_loader(f"{scalar}: x\n")


def test_an_impossible_date_stays_text_for_the_field_check_to_name():
    text = "publishedDateTime: 2021-02-30T10:00:00Z\nday: 2021-02-28\n"
    data = assert_same_as_full_loader(text)
    assert data["publishedDateTime"] == "2021-02-30T10:00:00Z"
    assert data["day"] == date(2021, 2, 28)


@pytest.mark.parametrize("text", UNUSUAL_TEXTS)
def test_tags_anchors_aliases_merges_and_errors_go_to_the_full_loader(text):
    assert plain_yaml.load(text) is plain_yaml.UNUSUAL
    assert_same_as_full_loader(text)


def test_front_matter_takes_the_plain_path():
    text = (
        'title: "Samsung\'s \\"new\\" phone"\n'
        "excerpt: >-\n  folded\n  text\n"
        "publishedDateTime: 2020-08-14T08:40:00Z\n"
        "quality: 86\npublished: true\nheat:\n"
        "provider:\n  name: Code Journal\n  domain: codejournal.example\n"
        "topics:\n- Power Apps\n- 'AI: news'\n"
        "images: []\n"
        "related:\n  - title: x # a comment\n    images: [{url: 'https://a.example/i.jpg'}]\n"
    )
    data = assert_same_as_full_loader(text)
    assert data["title"] == 'Samsung\'s "new" phone'
    assert data["heat"] is None
    assert data["topics"] == ["Power Apps", "AI: news"]
    assert data["related"][0]["images"][0]["url"] == "https://a.example/i.jpg"


@pytest.mark.parametrize("text", ["", "# a comment\n", "---\n", "[]\n", "{}\n", "x\n", "- 1\n"])
def test_documents_that_are_not_mappings(text):
    assert plain_yaml.load(text) is not plain_yaml.UNUSUAL
    assert_same_as_full_loader(text)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(),
    st.sampled_from(TRICKY_SCALARS),
    st.datetimes(),
    st.dates(),
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(TRICKY_SCALARS)), inner),
    max_leaves=20,
)


@given(documents, st.sampled_from([False, True, None]), st.sampled_from([20, 80, 1000]))
def test_dumped_documents_load_as_the_full_loader_loads_them(data, flow, width):
    text = yaml.safe_dump(data, default_flow_style=flow, width=width, allow_unicode=True)
    assert_same_as_full_loader(text)


@given(st.text(alphabet="ab:-[]{}!&*?<=#'\"\n ,|>%", max_size=40))
def test_any_text_loads_as_the_full_loader_loads_it(text):
    assert_same_as_full_loader(text)
