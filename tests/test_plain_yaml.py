"""The plain YAML path gives exactly what the full loader gives, or leaves the text to it."""

import math
from datetime import date
from pathlib import Path

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


def front_matter(path):
    text = Path(path).read_bytes().decode("utf-8-sig")
    opening = loader._OPENING_FENCE.match(text)
    closing = loader._CLOSING_FENCE.search(text, opening.end() - 1)
    return text[opening.end() : closing.start() + 1]


def assert_read_line_by_line(text):
    """``text`` takes the one-line layout's path, with the full loader's data."""
    data = plain_yaml._from_lines(text)
    kind, expected = full_result(text)
    assert kind == "data"
    assert same(data, expected), f"{text!r}: {data!r} != {expected!r}"


def test_seed_files_are_read_line_by_line(seeds_dir):
    paths = sorted(seeds_dir.glob("*.txt"))
    assert paths
    for path in paths:
        assert_read_line_by_line(front_matter(path))


@pytest.mark.corpus
def test_every_corpus_file_is_read_line_by_line(corpus):
    paths = sorted(path for path in corpus.rglob("*.md") if path.read_bytes().startswith(b"---"))
    assert len(paths) > 1000
    for path in paths:
        assert_read_line_by_line(front_matter(path))


LAYOUT_TEXTS = [
    "title: a\r\nheat: 5\r\n",  # CRLF files
    "topics:\n- a\n- b\nheat: 1\n",  # a sequence as indented as its key
    "related:\n  - title: x\n    images:\n    - url: y\n  -   title: z\n",
    "a:\n\n  # a comment\n  b: 1   \n\nc: 2\n",
    "  a: 1\n  b:\n",
    "a: 'it''s'\nb: ''\nc: '''a'''\nd: \"\"\n",
    "a: -1\nb: -x\nc: x-y\n",
    "a: https://example.com/#part\nb: a, b [c] {d}\n",
    "on: 1\nnull: 2\nTrue_1: 3\n",
    "a: [] \nb: {}\n",
    'a: "x" \n',
]

# Outside the layout: each goes to the events, which give the full loader's data or error.
OUTSIDE_LAYOUT_TEXTS = [
    "title: a long\n  title\n",  # a plain scalar over two lines
    "- a: 1\n",
    "a: x # a comment\n",
    "a: 'x' # a comment\n",
    'a: "two\n  lines"\n',
    "a: |\n  literal\n",
    "a: >\n  folded\n",
    "a: [1, 2]\n",
    "a:\n  - - 1\n",
    "a:\n  -\n  - 1\n",
    "a:\tb\n",
    "a: b\u2028c\n",
    "a: b\x85c\n",
    "a: b\rc\n",
    "a: \ufeffb\n",
    "a: b\x7f\n",
    "a: b\x01\n",
    "a: 1\n b: 2\n",
    "a:\n    b: 1\n  c: 2\n",
    "a:\n  - 1\n   - 2\n",
    "a:\n  - 1\n  b: 2\n",
    "'a': 1\n",
    "a : 1\n",
    "a:b\n",
    "? a\n: 1\n",
    "a: b: c\n",
    "a: b:\n",
    "a: 'unclosed\n",
    'a: "unclosed\n',
    'a: "x" y\n',
    'a: "\\q"\n',
    'a: "\\ud800"\n',
    'a: "\\/"\n',
    "a: 1\n...\n",
    "k" * 1100 + ": 1\n",
]


@pytest.mark.parametrize("text", LAYOUT_TEXTS)
def test_the_one_line_layout_is_read_line_by_line(text):
    assert_read_line_by_line(text)
    assert_same_as_full_loader(text)


@pytest.mark.parametrize("text", OUTSIDE_LAYOUT_TEXTS)
def test_anything_outside_the_layout_goes_to_the_events(text):
    with pytest.raises(plain_yaml._Unusual):
        plain_yaml._from_lines(text)
    assert_same_as_full_loader(text)


@pytest.mark.parametrize("escape", [*'0abtnvfre "\\N_LP', "x41", "u00e9", "U0001F600"])
def test_double_quoted_escapes_read_as_the_full_loader_reads_them(escape):
    assert_read_line_by_line(f'a: "x\\{escape}y"\n')


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
