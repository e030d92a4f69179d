"""Plain YAML documents built without composing libyaml's node tree.

``yaml.load`` has libyaml compose a tree of node objects, then walks it in
Python through the constructor's generic machinery: that walk costs as much as
the parse itself. Front matter is plain data (no tags, anchors, aliases or merge
keys), so ``load`` builds its dicts and lists as the events arrive, resolving
and constructing scalars with the loader's own resolvers and constructors:
half the time of ``yaml.load`` on news files, with the same result.

Front matter written by one tool keeps to one layout: a key and its value on
a line, nested blocks indented, items after ``- ``, quoted or plain one-line
scalars. ``load`` first reads that layout line by line, in about half the time
of libyaml's events (parsing is most of a load's work); a line outside it
sends the document to the events.

Anything else, including every error, returns ``UNUSUAL``: the caller then runs
the full loader, which gives exactly its own result or error.
"""

import re

import yaml
from yaml import (
    DocumentEndEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode


class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The safe loader, except that an impossible date (``2021-02-30``) stays text.

    Its timestamp constructor would raise a bare ValueError naming neither line
    nor key; as text, the field's own check names the field.
    """

    def construct_timestamp_or_text(self, node):
        try:
            return self.construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


Loader.add_constructor("tag:yaml.org,2002:timestamp", Loader.construct_timestamp_or_text)
UNUSUAL = object()
# Deeper documents go to the full loader, whose checks refuse them.
MAX_DEPTH = 20

_WILDCARD = Loader.yaml_implicit_resolvers.get(None, [])
_IMPLICIT = {
    first: resolvers + _WILDCARD
    for first, resolvers in Loader.yaml_implicit_resolvers.items()
    if first is not None
}
_CONSTRUCTORS = Loader.yaml_constructors
_NO_KEY = object()


class _Unusual(Exception):
    """Something only the full loader handles."""


def load(text):
    """The data of a one-document YAML text, or ``UNUSUAL``."""
    if Loader.yaml_path_resolvers:  # tags by position in the document, if anyone adds one
        return UNUSUAL
    try:
        return _from_lines(text)
    except Exception:  # noqa: BLE001, S110 -- outside the layout: the events decide
        pass
    loader = Loader(text)
    try:
        return _build(loader)
    except Exception:  # noqa: BLE001 -- the full loader raises the same error, or handles it
        return UNUSUAL
    finally:
        loader.dispose()


def _plain_scalar(loader, value):
    """A plain scalar's value, as the safe loader resolves and constructs it.

    Merge keys (<<) and value keys (=) have no constructor: the KeyError sends
    them to the full loader.
    """
    for tag, pattern in _IMPLICIT.get(value[:1], _WILDCARD):
        if pattern.match(value):
            return _CONSTRUCTORS[tag](loader, ScalarNode(tag, value))
    return value


_CONSTRUCTING = Loader("")
# Plain scalars typed before (keys, types, numbers, domains repeat in every file).
_TYPED = {}
_TYPED_LIMIT = 4096
_TYPED_LENGTH = 40


def _plain(value):
    """A plain scalar typed as the safe loader types it (see _plain_scalar)."""
    try:
        return _TYPED[value]
    except KeyError:
        pass
    typed = _plain_scalar(_CONSTRUCTING, value)
    if len(value) <= _TYPED_LENGTH:
        if len(_TYPED) >= _TYPED_LIMIT:
            _TYPED.clear()
        _TYPED[value] = typed
    return typed


def _build(loader):
    next_event = loader.get_event
    next_event()  # the stream's start
    event = next_event()
    if isinstance(event, StreamEndEvent):
        return None
    if event.version or event.tags:
        raise _Unusual
    # Open collections, each with the key waiting for its value (mappings only).
    open_collections = []
    pending_keys = []
    root = _NO_KEY
    while True:
        event = next_event()
        kind = event.__class__
        if kind is ScalarEvent:
            if event.tag is not None or event.anchor is not None:
                raise _Unusual
            value = event.value
            if event.implicit[0]:  # plain, not quoted: typed as YAML 1.1 types it
                value = _plain(value)
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.tag is not None or event.anchor is not None:
                raise _Unusual
            if len(open_collections) >= MAX_DEPTH:
                raise _Unusual
            open_collections.append({} if kind is MappingStartEvent else [])
            pending_keys.append(_NO_KEY)
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            value = open_collections.pop()
            pending_keys.pop()
        elif kind is DocumentEndEvent:
            break
        else:  # an alias
            raise _Unusual
        if not open_collections:
            root = value
            continue
        parent = open_collections[-1]
        if parent.__class__ is list:
            parent.append(value)
            continue
        key = pending_keys[-1]
        if key is _NO_KEY:  # a collection as key fails to hash below: the full loader's
            pending_keys[-1] = value
        else:
            parent[key] = value
            pending_keys[-1] = _NO_KEY
    if not isinstance(next_event(), StreamEndEvent):  # a second document
        raise _Unusual
    return None if root is _NO_KEY else root


# --- The one-line layout ------------------------------------------------------

# Line breaks YAML knows besides \n (\r, NEL, LS, PS), tabs, a byte-order mark,
# and what the reader refuses: the events handle all of them.
_NOT_IN_LAYOUT = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_ASCII_NOT_IN_LAYOUT = re.compile("[^\n\x20-\x7e]")
_DOUBLE_QUOTED = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"')
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)")
_ESCAPED = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r",
    "e": "\x1b", " ": " ", '"': '"', "\\": "\\", "N": "\x85", "_": "\xa0", "L": "\u2028",
    "P": "\u2029",
}  # fmt: skip
# A plain scalar cannot start with these (or with "- ", "? ", ": ").
_INDICATORS = frozenset("#&*!|>%@`,[]{}?:'\"")
_LONGEST_KEY = 1000


def _from_lines(text):
    """The mapping of a document in the one-line layout; raises _Unusual otherwise."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if (_ASCII_NOT_IN_LAYOUT if text.isascii() else _NOT_IN_LAYOUT).search(text):
        raise _Unusual
    lines = []  # (column, content) of each line that is not blank or a comment
    for line in text.split("\n"):
        content = line.lstrip(" ")
        if content and content[0] != "#":
            lines.append((len(line) - len(content), content.rstrip(" ")))
    if not lines:
        return None
    mapping, at = _mapping(lines, 0, lines[0][0], 1)
    if at != len(lines):
        raise _Unusual
    return mapping


def _key_and_value(content):
    """A ``key: value`` line's key, and its value's text or None when nothing follows the colon."""
    if content[-1] == ":":
        key, value = content[:-1], None
    else:
        key, colon, value = content.partition(": ")
        if not colon:
            raise _Unusual
        value = value.lstrip(" ")
    # Plain keys of letters, digits and underscores; anything else goes to the events,
    # and so do keys too long for libyaml to take as keys.
    if not (key.isidentifier() and key.isascii()) or len(key) > _LONGEST_KEY:
        raise _Unusual
    return _plain(key), value


def _mapping(lines, at, indent, depth):
    """The block mapping whose keys sit at column ``indent``, from ``lines[at]``;
    returns it with the index of the line after it."""
    if depth >= MAX_DEPTH:
        raise _Unusual
    mapping = {}
    count = len(lines)
    while at < count:
        column, content = lines[at]
        if column != indent:
            if column < indent:
                break
            raise _Unusual
        key, value = _key_and_value(content)
        at += 1
        if value is None:
            value, at = _block_value(lines, at, indent, depth + 1)
        else:
            value = _scalar(value)
        mapping[key] = value
    return mapping, at


def _block_value(lines, at, indent, depth):
    """The value of a key at column ``indent`` with nothing after its colon."""
    if at < len(lines):
        column, content = lines[at]
        if content.startswith("- ") and column >= indent:
            return _sequence(lines, at, column, depth)
        if column > indent:
            return _mapping(lines, at, column, depth)
    return None, at


def _sequence(lines, at, indent, depth):
    """The block sequence whose dashes sit at column ``indent``, from ``lines[at]``."""
    if depth >= MAX_DEPTH:
        raise _Unusual
    items = []
    count = len(lines)
    while at < count:
        column, content = lines[at]
        if column > indent:
            raise _Unusual
        if column < indent or not content.startswith("- "):
            break
        item = content[2:].lstrip(" ")
        if ": " in item or item[-1] == ":":  # a mapping starts on the dash's line
            column += len(content) - len(item)
            lines[at] = (column, item)
            item, at = _mapping(lines, at, column, depth + 1)
        else:
            item, at = _scalar(item), at + 1
        items.append(item)
    return items, at


def _scalar(text):
    """The value of a one-line scalar written after a key or a dash."""
    first = text[0]
    if first == '"':
        match = _DOUBLE_QUOTED.fullmatch(text)
        if match is None:
            raise _Unusual
        value = match.group(1)
        return _ESCAPE.sub(_unescaped, value) if "\\" in value else value
    if first == "'":
        value = text[1:-1]
        if len(text) < 2 or text[-1] != "'" or "'" in value.replace("''", ""):
            raise _Unusual
        return value.replace("''", "'")
    if text == "[]":
        return []
    if text == "{}":
        return {}
    if (
        first in _INDICATORS
        or (first == "-" and text[1:2] in ("", " "))
        or ": " in text
        or " #" in text
        or text[-1] == ":"
    ):
        raise _Unusual
    return _plain(text)


def _unescaped(match):
    code = match.group(1)
    if len(code) == 1:
        if code not in _ESCAPED:
            raise _Unusual
        return _ESCAPED[code]
    point = int(code[1:], 16)
    if 0xD800 <= point <= 0xDFFF or point > 0x10FFFF:
        raise _Unusual
    return chr(point)
