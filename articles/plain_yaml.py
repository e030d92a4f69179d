"""Plain YAML documents built straight from libyaml's events.

``yaml.load`` has libyaml compose a tree of node objects, then walks it in
Python through the constructor's generic machinery: that walk costs as much as
the parse itself. Front matter is plain data (no tags, anchors, aliases or merge
keys), so ``load`` builds its dicts and lists as the events arrive, resolving
and constructing scalars with the loader's own resolvers and constructors:
half the time of ``yaml.load`` on news files, with the same result.

Anything else, including every error, returns ``UNUSUAL``: the caller then runs
the full loader, which gives exactly its own result or error.
"""

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
    loader = Loader(text)
    try:
        if loader.yaml_path_resolvers:  # tags by position in the document, if anyone adds one
            return UNUSUAL
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
                value = _plain_scalar(loader, value)
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
