"""Load news, topic and organization files into the database.

``load(paths)`` walks files and folders, skips files whose bytes did not change
since the last load (without parsing them), parses and validates the rest fully
in Python, then writes them a chunk at a time: one savepoint per chunk, and if a
chunk fails, again file by file so one bad file never half-writes or stops the
run. It returns a ``LoadResult`` with the counts, errors and warnings.

Identity follows PRODUCT.md: a file is its *source key* (the path relative to
the folder loaded), a story is its canonical URL. A file whose URL changed moves
its own story to the new URL, merging any story already there; a related-only
story that arrives as a file is upgraded in place. A load never deletes a story
except the emptied half of such a merge, and never overwrites an editor's
``published`` decision.
"""

import hashlib
import itertools
import multiprocessing
import os
import re
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import yaml
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify
from pyroaring import BitMap64

from . import clustering, plain_yaml, versioning
from .bulk import column_defaults, fewer_collections, insert_rows, update_rows
from .canonical import InvalidURL, host_of, link_and_canonical, link_url
from .models import (
    Article,
    ArticleImage,
    ArticleTopic,
    Cluster,
    ClusterOverride,
    ClusterTopic,
    ModerationEvent,
    Provider,
    ProviderImage,
    RelatedListing,
    SourceFile,
    Topic,
)
from .text import clean_excerpt, clean_text

YamlLoader = plain_yaml.Loader

FILE_SUFFIXES = (".md", ".txt", ".yaml", ".yml")
# Files written per savepoint, and the most raw bytes held in memory at once.
CHUNK_FILES = 300
CHUNK_BYTES = 16 * 1024 * 1024
# Real files nest four levels deep; anything far deeper is hostile or broken.
MAX_DEPTH = 20
SLUG_TITLE_LENGTH = 180
IN_LOOKUP_SIZE = 2000
# Scores are stored in 32-bit integer columns.
LARGEST_INTEGER = 2**31 - 1
CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
PARSED, FAILED = "parsed", "failed"
# Processes that parse a large load while this one writes it.
PARSE_WORKERS = min(2, os.cpu_count() or 1)

# Article columns a news file sets.
FILE_FIELDS = [
    "category",
    "title",
    "excerpt",
    "published_at",
    "web_url",
    "original_url",
    "amp_web_url",
    "cdn_amp_web_url",
    "type",
    "quality",
    "heat",
    "featured_content",
    "secured",
    "provider_id",
    "published",
    "file_published",
    "is_file_backed",
    "source_key",
    "content_hash",
    "updated_at",
]
# Columns read to decide what a file changes.
STORY_STATE = [
    "pk",
    "canonical_url",
    "slug",
    "source_key",
    "is_file_backed",
    "content_hash",
    "published",
    "published_decided_at",
    "first_seen_at",
]

_OPENING_FENCE = re.compile(r"---[ \t]*\r?\n")
# A --- line, found from the line break before it: the literal start lets the
# search skip ahead, where ``^`` in multi-line mode tries every character.
_CLOSING_FENCE = re.compile(r"\n---[ \t]*\r?(?=\n|\Z)")
# Deep block nesting needs deep indentation, or compact sequences and complex
# keys on one line (``- - -``, ``? ? ?``), which crash the C composer when deep.
_DEEP_INDENT = "\n" + " " * MAX_DEPTH
_COMPACT_NESTING = re.compile(r"[-?][ \t]+[-?][ \t\n]")
_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?(?::[0-9]{1,5})?")


@dataclass(frozen=True)
class Problem:
    path: str
    field: str
    message: str

    def __str__(self):
        return f"{self.path}: {self.field}: {self.message}"


@dataclass
class LoadResult:
    files: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    # Stories created or changed, and related-only stories their files list: a
    # compressed bitmap, a few bytes an id where a set takes about 70.
    article_ids: BitMap64 = field(default_factory=BitMap64)
    # Grouped stories a load deleted (merged into another), as clustering.Deleted.
    deleted: list = field(default_factory=list)

    @property
    def changed(self):
        return bool(self.created or self.updated)

    def summary(self):
        return (
            f"files: {self.files}, created: {self.created}, updated: {self.updated}, "
            f"unchanged: {self.unchanged}, failed: {self.failed}, warnings: {len(self.warnings)}"
        )

    def as_dict(self):
        return {
            "files": self.files,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "warnings_count": len(self.warnings),
            "errors": [problem.__dict__ for problem in self.errors],
            "warnings": [problem.__dict__ for problem in self.warnings],
        }


class UnusablePath(Exception):
    """A command-line path that does not exist or is not a file or folder."""


class FileError(Exception):
    """A file that cannot be loaded: ``field`` names the part, the message says why."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


# Finding files ------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    path: str
    key: str


def check_paths(paths):
    """Fail early, before anything is loaded, on a path that cannot be used."""
    for path in paths:
        if not os.path.exists(path):
            raise UnusablePath(f"{path}: no such file or folder")
        if not (os.path.isfile(path) or os.path.isdir(path)):
            raise UnusablePath(f"{path}: not a file or folder")


def iter_sources(paths):
    """Every loadable file under ``paths`` with its source key, in a stable order.

    A folder's files are keyed relative to it; a single file by its name. Hidden
    files and ``README`` files (documentation beside data) are skipped in folders.
    """
    for path in paths:
        if os.path.isfile(path):
            yield Source(str(path), Path(path).name)
            continue
        for folder, subfolders, names in os.walk(path):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            relative = Path(os.path.relpath(folder, path)).as_posix()
            prefix = "" if relative == "." else relative + "/"
            for name in sorted(names):
                if (
                    name.startswith(".")
                    or name.upper().startswith("README")
                    or not name.lower().endswith(FILE_SUFFIXES)
                ):
                    continue
                yield Source(os.path.join(folder, name), prefix + name)


def count_files(paths):
    return sum(1 for _ in iter_sources(paths))


# Parsing and validation ---------------------------------------------------------


@dataclass
class Parsed:
    """A file validated and cleaned, ready to write."""

    kind: str
    source: Source
    raw_hash: str
    data: dict
    warnings: list


def read_bytes(path, limit):
    try:
        if os.path.getsize(path) > limit:
            raise FileError("file", f"is larger than the {limit:,}-byte limit")
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise FileError("file", f"cannot be read ({exc.strerror})") from None
    if len(raw) > limit:
        raise FileError("file", f"is larger than the {limit:,}-byte limit")
    return raw


def raw_digest(raw):
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def parse(source, raw, raw_hash):
    """Validate one file's bytes; returns ``Parsed`` or raises ``FileError``."""
    mapping, fenced = _read_mapping(raw)
    taxonomy = mapping.get("taxonomy")
    warnings = []

    def warn(part, message):
        warnings.append((part, message))

    if taxonomy is None:
        if not fenced:
            raise FileError("front matter", "is missing: a news file starts with a --- line")
        kind, data = SourceFile.KIND_NEWS, _clean_news(mapping, warn)
    elif taxonomy == "topic":
        kind, data = SourceFile.KIND_TOPIC, _clean_topic(mapping, warn)
    elif taxonomy == "organization":
        kind, data = SourceFile.KIND_ORGANIZATION, _clean_organization(mapping, warn)
    else:
        raise FileError("taxonomy", f"{taxonomy!r} is not known (expected topic or organization)")
    return Parsed(kind, source, raw_hash, data, warnings)


def _read_mapping(raw):
    if not raw.strip():
        raise FileError("file", "is empty")
    if b"\x00" in raw:
        raise FileError("file", "is binary, not text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileError(
            "file", f"is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    opening = _OPENING_FENCE.match(text)
    if opening:
        closing = _CLOSING_FENCE.search(text, opening.end() - 1)
        if closing is None:
            raise FileError("front matter", "is not closed by a --- line")
        text = text[opening.end() : closing.start() + 1]
    mapping = _load_yaml(text)
    if not isinstance(mapping, dict):
        kind = "nothing" if mapping is None else type(mapping).__name__
        raise FileError("front matter", f"must be a YAML mapping of keys to values, not {kind}")
    return mapping, opening is not None


def _load_yaml(text):
    data = plain_yaml.load(text)
    if data is plain_yaml.UNUSUAL:
        data = _load_any_yaml(text)
    return data


def _load_any_yaml(text):
    """The full loader, with checks for what the plain path leaves to it."""
    try:
        if _may_nest_deeply(text):
            _check_structure(text)
        data = yaml.load(text, Loader=YamlLoader)  # noqa: S506 -- a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if not isinstance(exc, yaml.constructor.ConstructorError):
            raise FileError("yaml", f"syntax error{where}: {problem}") from None
        if "constructor for the tag" in problem:
            refused = f"tags that construct objects are refused ({problem})"
            raise FileError("yaml", refused) from None
        # A list or mapping as a key, say: valid YAML, but not plain data.
        raise FileError("yaml", f"is not plain data{where}: {problem}") from None
    if "*" in text:  # an alias is written *name: without one, there is nothing to walk
        _refuse_aliases(data)
    return data


def _may_nest_deeply(text):
    """Cheap screening: only text that could nest deeply pays for the event scan."""
    if text.count("[") + text.count("{") > MAX_DEPTH // 2 or _DEEP_INDENT in text:
        return True
    return _COMPACT_NESTING.search(text) is not None


def _refuse_aliases(data):
    """Refuse YAML aliases: they come out as one list or mapping reached twice.

    An alias bomb builds little (aliases share objects) but would explode in any
    code walking it. The walk stops at the first repeat, so it is bounded by the
    file's size.
    """
    if not isinstance(data, dict | list):
        return
    seen = set()
    stack = [data]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            raise FileError("yaml", "anchors and aliases (&name, *name) are refused")
        seen.add(id(node))
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append(child)


def _check_structure(text):
    """Refuse deep nesting (and anchors/aliases) before building anything.

    Scanning events is iterative and cheap; composing a deeply nested document in
    the C loader would overflow the stack.
    """
    depth = 0
    for event in yaml.parse(text, Loader=YamlLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise FileError("yaml", "anchors and aliases (&name, *name) are refused")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise FileError("yaml", f"nesting deeper than {MAX_DEPTH} levels is refused")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _type_name(value):
    return "null" if value is None else type(value).__name__


def _required_text(mapping, key, label=None):
    label = label or key
    if key not in mapping:
        raise FileError(label, "is missing")
    value = mapping[key]
    if not isinstance(value, str):
        if value is None:
            raise FileError(label, "is empty (null)")
        raise FileError(label, f"must be a string, not {_type_name(value)}")
    text = clean_text(value)
    if not text:
        raise FileError(label, "is empty")
    return text


def _optional_text(mapping, key, label, warn, clean=clean_text):
    value = mapping.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return clean(str(value))
    warn(label, f"must be a string, not {_type_name(value)}; ignored")
    return ""


def _integer(mapping, key, label):
    value = mapping.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FileError(label, f"must be an integer, not {value!r:.40}")
    if not -LARGEST_INTEGER <= value <= LARGEST_INTEGER:
        raise FileError(label, f"{value} is out of range")
    return value


def _boolean(mapping, key, label):
    value = mapping.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise FileError(label, f"must be true or false, not {value!r:.40}")


def _datetime(mapping, key, label):
    value = mapping.get(key)
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = parse_datetime(value.strip())
        except ValueError:
            moment = None
        if moment is None:
            raise FileError(label, f"{value!r:.40} is not a date and time (YYYY-MM-DDTHH:MM:SSZ)")
    else:
        raise FileError(label, f"must be a date and time, not {_type_name(value)}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _url(mapping, key, label):
    """The link form of an optional URL field; raises ``FileError`` when it is bad."""
    value = mapping.get(key)
    if value is None or value == "":
        return ""
    try:
        return link_url(value)
    except InvalidURL as exc:
        raise FileError(label, str(exc)) from None


def _story_url(mapping, key, label):
    """``(link, canonical URL)`` of a story's URL field, ``("", "")`` when absent."""
    value = mapping.get(key)
    if value is None or value == "":
        return "", ""
    try:
        return link_and_canonical(value)
    except InvalidURL as exc:
        raise FileError(label, str(exc)) from None


def _optional(warn, parse_value, *args):
    """``parse_value(*args)``, or its empty value with a warning when that part is bad."""
    try:
        return parse_value(*args)
    except FileError as exc:
        warn(exc.field, f"{exc.message}; ignored")
        return None


def _domain(value, label, warn):
    if not isinstance(value, str) or not value.strip():
        raise FileError(label, "is missing" if value is None else "must be a domain name")
    domain = value.strip().lower()
    if "://" in domain:
        try:
            domain = host_of(domain)
        except InvalidURL as exc:
            raise FileError(label, f"is a URL that {exc}") from None
        warn(label, f"is a URL, not a domain; using its host {domain}")
    domain = domain.rstrip("/.")
    if len(domain) > 253 or not _DOMAIN.fullmatch(domain):
        raise FileError(label, f"{value!r:.60} is not a domain name")
    return domain


def _provider(value, label, warn):
    if value is None:
        raise FileError(label, "is missing")
    if not isinstance(value, dict):
        raise FileError(label, f"must be a mapping with name and domain, not {_type_name(value)}")
    domain = _domain(value.get("domain"), f"{label}.domain", warn)
    name = _optional_text(value, "name", f"{label}.name", warn) or domain
    return {
        "domain": domain,
        "name": name[:300],
        "images": _images(value.get("images"), f"{label}.images", warn),
    }


def _images(value, label, warn):
    """The images of a list that can be stored; bad ones are dropped with a warning."""
    if value is None:
        return []
    if not isinstance(value, list):
        warn(label, f"must be a list, not {_type_name(value)}; ignored")
        return []
    images = []
    for index, image in enumerate(value):
        part = f"{label}[{index}]"
        try:
            images.append(_image(image, part, warn))
        except FileError as exc:
            warn(exc.field, f"{exc.message}; image dropped")
    return images


def _image(image, part, warn):
    if not isinstance(image, dict):
        raise FileError(part, f"must be a mapping, not {_type_name(image)}")
    if "url" not in image:
        raise FileError(f"{part}.url", "is missing")
    url = _url(image, "url", f"{part}.url")
    if not url:
        raise FileError(f"{part}.url", "is empty")
    size = {}
    for key in ("width", "height"):
        number = image.get(key)
        if isinstance(number, str) and number.strip().isdigit():
            number = int(number)
        if number is not None and (
            isinstance(number, bool) or not isinstance(number, int) or number < 0
        ):
            raise FileError(f"{part}.{key}", f"{number!r:.40} is not a size in pixels")
        size[key] = number
    cached = image.get("isCached")
    return {
        "url": url,
        "width": size["width"],
        "height": size["height"],
        "isCached": cached if isinstance(cached, bool) else None,
        "title": _optional_text(image, "title", f"{part}.title", warn),
    }


def _clean_news(mapping, warn):
    title = _required_text(mapping, "title")
    web_url, web_canonical = _story_url(mapping, "webUrl", "webUrl")
    original_url, original_canonical = _story_url(mapping, "originalUrl", "originalUrl")
    if not (web_url or original_url):
        raise FileError("webUrl", "is missing (and there is no originalUrl)")
    canonical = web_canonical or original_canonical
    heat = _integer(mapping, "heat", "heat")
    kind = mapping.get("type") or Article.TYPE_ARTICLE
    if kind not in (Article.TYPE_ARTICLE, Article.TYPE_VIDEO):
        warn("type", f"{kind!r:.40} is not article or video; stored as article")
        kind = Article.TYPE_ARTICLE
    story = {
        "category": _optional_text(mapping, "category", "category", warn)[:100],
        "title": title,
        "excerpt": _optional_text(mapping, "excerpt", "excerpt", warn, clean_excerpt),
        "published_at": _datetime(mapping, "publishedDateTime", "publishedDateTime"),
        "web_url": web_url,
        "original_url": original_url,
        "amp_web_url": _optional(warn, _url, mapping, "ampWebUrl", "ampWebUrl") or "",
        "cdn_amp_web_url": _optional(warn, _url, mapping, "cdnAmpWebUrl", "cdnAmpWebUrl") or "",
        "type": kind,
        "quality": _integer(mapping, "quality", "quality"),
        "heat": None if heat == -1 else heat,
        "file_published": _boolean(mapping, "published", "published"),
        "featured_content": _raw_text(mapping, "featuredContent", warn),
        "secured": _raw_text(mapping, "secured", warn),
    }
    data = {
        "canonical": canonical,
        "story": story,
        "provider": _provider(mapping.get("provider"), "provider", warn),
        "topics": _topics(mapping.get("topics")),
        "images": _images(mapping.get("images"), "images", warn),
        "related": _related(mapping.get("related"), canonical, warn),
    }
    # The cleaned data is built in a fixed key order, so its repr is a stable
    # fingerprint of the values (a pickle also encodes which objects are shared).
    data["content_hash"] = hashlib.blake2b(repr(data).encode(), digest_size=16).hexdigest()
    return data


def _raw_text(mapping, key, warn):
    """Opaque strings (an iframe, a signature) kept as they are; never rendered.

    Only NUL goes: databases refuse it in text (YAML's ``"\\0"`` escape makes one).
    """
    value = mapping.get(key)
    if value is None or isinstance(value, str):
        return (value or "").replace("\x00", "").strip()
    warn(key, f"must be a string, not {_type_name(value)}; ignored")
    return ""


def _topics(value):
    if value is None:
        return []
    if not isinstance(value, list):
        raise FileError("topics", f"must be a list of topic names, not {_type_name(value)}")
    names = []
    for index, name in enumerate(value):
        if not isinstance(name, str):
            raise FileError(f"topics[{index}]", f"must be a topic name, not {_type_name(name)}")
        name = clean_text(name)[:200]
        if name and name not in names:
            names.append(name)
    return names


def _related(value, own_canonical, warn):
    if value is None:
        return []
    if not isinstance(value, list):
        warn("related", f"must be a list, not {_type_name(value)}; ignored")
        return []
    items = []
    for index, item in enumerate(value):
        part = f"related[{index}]"
        try:
            listing = _related_item(item, part, warn)
        except FileError as exc:
            warn(exc.field, f"{exc.message}; related item dropped")
            continue
        if listing["canonical"] == own_canonical:
            warn(f"{part}.webUrl", "is the file's own story; related item dropped")
            continue
        items.append(listing)
    return items


def _related_item(item, part, warn):
    if not isinstance(item, dict):
        raise FileError(part, f"must be a mapping, not {_type_name(item)}")
    if "webUrl" not in item:
        raise FileError(f"{part}.webUrl", "is missing")
    web_url, canonical = _story_url(item, "webUrl", f"{part}.webUrl")
    if not web_url:
        raise FileError(f"{part}.webUrl", "is empty")
    provider = item.get("provider")
    if provider is not None:
        provider = _optional(warn, _provider, provider, f"{part}.provider", warn)
    return {
        "canonical": canonical,
        "title": _required_text(item, "title", f"{part}.title"),
        "excerpt": _optional_text(item, "excerpt", f"{part}.excerpt", warn, clean_excerpt),
        "published_at": _optional(
            warn,
            _datetime,
            item,
            "publishedDateTime",
            f"{part}.publishedDateTime",
        ),
        "web_url": web_url,
        "amp_web_url": _optional(warn, _url, item, "ampWebUrl", f"{part}.ampWebUrl") or "",
        "cdn_amp_web_url": _optional(warn, _url, item, "cdnAmpWebUrl", f"{part}.cdnAmpWebUrl")
        or "",
        "type": item.get("type") if item.get("type") in ("article", "video") else "article",
        "quality": _optional(warn, _integer, item, "quality", f"{part}.quality"),
        "provider": provider,
        "images": _images(item.get("images"), f"{part}.images", warn),
    }


def _clean_topic(mapping, warn):
    name = _required_text(mapping, "name")[:200]
    parent = _optional_text(mapping, "parent", "parent", warn)[:200]
    if parent == name:
        warn("parent", "is the topic itself; ignored")
        parent = ""
    keywords = mapping.get("keywords")
    if keywords is None:
        keywords = []
    elif not isinstance(keywords, list) or not all(isinstance(word, str) for word in keywords):
        warn("keywords", "must be a list of strings; ignored")
        keywords = []
    return {
        "name": name,
        "parent": parent,
        "shortname": _optional_text(mapping, "shortname", "shortname", warn)[:200],
        "description": _optional_text(mapping, "description", "description", warn),
        "keywords": [clean_text(word) for word in keywords],
    }


def _clean_organization(mapping, warn):
    domain = _domain(mapping.get("domain"), "domain", warn)
    return {
        "domain": domain,
        "name": (_optional_text(mapping, "name", "name", warn) or domain)[:300],
        "description": _optional_text(mapping, "description", "description", warn),
        "images": _images(mapping.get("images"), "images", warn),
    }


# Writing ------------------------------------------------------------------------


def story_slug(title, canonical):
    """Readable and stable: set once when the story is created, never changed."""
    digest = hashlib.blake2b(canonical.encode(), digest_size=4).hexdigest()
    words = slugify(title)[:SLUG_TITLE_LENGTH].strip("-") or "story"
    return f"{words}-{digest}"


def claim_unique_slugs(model, objects):
    """Number an object whose slug a stored row or an earlier object here already has.

    Stories keep their slug when their file moves to another URL, so a story
    arriving later at the old URL computes the very same slug; two topic names can
    slugify alike ("IBM AI", "IBM-AI").
    """
    objects = list(objects)
    wanted = {obj.slug for obj in objects}
    taken = {
        slug
        for part in in_slices(wanted)
        for slug in model.objects.filter(slug__in=part).values_list("slug", flat=True)
    }
    for obj in objects:
        if obj.slug in taken:
            base, number = obj.slug, 2
            while (
                f"{base}-{number}" in taken
                or model.objects.filter(slug=f"{base}-{number}").exists()
            ):
                number += 1
            obj.slug = f"{base}-{number}"
        taken.add(obj.slug)


@dataclass
class ChunkOutcome:
    statuses: dict = field(default_factory=dict)
    article_ids: set = field(default_factory=set)
    # Clusters that lost a member to a merge and need their counts redone.
    cluster_ids: set = field(default_factory=set)
    deleted: list = field(default_factory=list)
    # Source key -> the story its file feeds.
    article_of: dict = field(default_factory=dict)


def write_chunk(items):
    """Write validated files; raises on a database error (the caller's savepoint undoes it)."""
    outcome = ChunkOutcome()
    now = timezone.now()
    by_kind = {kind: [] for kind, _ in SourceFile.KIND_CHOICES}
    for item in items:
        by_kind[item.kind].append(item)
    known = {
        source_file.key: source_file
        for source_file in SourceFile.objects.filter(key__in=[item.source.key for item in items])
    }
    if by_kind[SourceFile.KIND_TOPIC]:
        _write_topics(by_kind[SourceFile.KIND_TOPIC], outcome, now)
    if by_kind[SourceFile.KIND_ORGANIZATION]:
        _write_organizations(by_kind[SourceFile.KIND_ORGANIZATION], outcome, now)
    if by_kind[SourceFile.KIND_NEWS]:
        known = _follow_moved_urls(by_kind[SourceFile.KIND_NEWS], known, outcome)
        _write_news(by_kind[SourceFile.KIND_NEWS], known, outcome, now)
    _record_source_files(items, known, outcome, now)
    return outcome


def _record_source_files(items, known, outcome, now):
    new, changed = [], []
    for item in items:
        article_id = outcome.article_of.get(item.source.key)
        row = known.get(item.source.key)
        if row is None:
            new.append(
                SourceFile(
                    key=item.source.key,
                    kind=item.kind,
                    article_id=article_id,
                    raw_hash=item.raw_hash,
                    loaded_at=now,
                )
            )
        else:
            row.kind, row.article_id, row.raw_hash, row.loaded_at = (
                item.kind,
                article_id,
                item.raw_hash,
                now,
            )
            changed.append(row)
    insert_rows(SourceFile, new)
    update_rows(SourceFile, changed, ["kind", "article_id", "raw_hash", "loaded_at"])


def in_slices(values):
    """``values`` in lists short enough for one ``__in`` lookup.

    A chunk's related lists can name tens of thousands of URLs; SQLite refuses
    statements with more than 32,766 parameters.
    """
    values = list(values)
    for start in range(0, len(values), IN_LOOKUP_SIZE):
        yield values[start : start + IN_LOOKUP_SIZE]


def ensure_topics(names, now):
    """``{name: Topic}`` for every name, creating the missing ones with unique slugs."""
    topics = {topic.name: topic for topic in Topic.objects.filter(name__in=set(names))}
    missing = [name for name in dict.fromkeys(names) if name not in topics]
    if missing:
        created = [
            Topic(name=name, slug=slugify(name)[:200] or "topic", created_at=now, updated_at=now)
            for name in missing
        ]
        claim_unique_slugs(Topic, created)
        Topic.objects.bulk_create(created)
        if any(topic.pk is None for topic in created):
            created = Topic.objects.filter(name__in=missing)
        topics.update((topic.name, topic) for topic in created)
    return topics


def ensure_providers(names_by_domain, now):
    """``{domain: provider id}``; new providers take the first name a file gave them."""
    ids = {
        domain: pk
        for part in in_slices(names_by_domain)
        for domain, pk in Provider.objects.filter(domain__in=part).values_list("domain", "pk")
    }
    missing = [
        Provider(domain=domain, name=name, created_at=now, updated_at=now)
        for domain, name in names_by_domain.items()
        if domain not in ids
    ]
    if missing:
        Provider.objects.bulk_create(missing)
        if any(provider.pk is None for provider in missing):
            return ensure_providers(names_by_domain, now)
        ids.update((provider.domain, provider.pk) for provider in missing)
    return ids


def _edited_descriptions(field, ids):
    """Topics or providers whose description an editor wrote: loads keep the editor's text."""
    return set(
        ModerationEvent.objects.filter(
            action=ModerationEvent.EDIT_DESCRIPTION, **{f"{field}_id__in": ids}
        ).values_list(f"{field}_id", flat=True)
    )


def _write_topics(items, outcome, now):
    names = [item.data["name"] for item in items]
    existed = set(Topic.objects.filter(name__in=names).values_list("name", flat=True))
    topics = ensure_topics(
        names + [item.data["parent"] for item in items if item.data["parent"]], now
    )
    edited = _edited_descriptions("topic", [topic.pk for topic in topics.values()])
    for item in items:
        data = item.data
        topic = topics[data["name"]]
        values = {
            "parent_id": topics[data["parent"]].pk if data["parent"] else None,
            "shortname": data["shortname"],
            "description": topic.description if topic.pk in edited else data["description"],
            "keywords": data["keywords"],
        }
        if data["name"] not in existed:
            status = CREATED
        elif any(getattr(topic, name) != value for name, value in values.items()):
            status = UPDATED
        else:
            outcome.statuses[item.source.key] = UNCHANGED
            continue
        Topic.objects.filter(pk=topic.pk).update(**values, updated_at=now)
        # A later file naming the same topic in this chunk compares with these values.
        for name, value in values.items():
            setattr(topic, name, value)
        existed.add(data["name"])
        outcome.statuses[item.source.key] = status


def _write_organizations(items, outcome, now):
    domains = {item.data["domain"]: item.data["name"] for item in items}
    existing = {
        provider.domain: provider for provider in Provider.objects.filter(domain__in=domains)
    }
    ids = ensure_providers(domains, now)
    edited = _edited_descriptions("provider", list(ids.values()))
    logos = {}
    for image in ProviderImage.objects.filter(provider_id__in=ids.values()):
        logos.setdefault(image.provider_id, []).append((image.url, image.width, image.height))
    for item in items:
        data = item.data
        provider_id = ids[data["domain"]]
        old = existing.get(data["domain"])
        images = [(image["url"], image["width"], image["height"]) for image in data["images"]]
        description = old.description if provider_id in edited else data["description"]
        same_text = old is not None and (old.name, old.description) == (data["name"], description)
        # Without a usable logo of its own, a provider keeps the one news files gave it.
        same_logos = not images or logos.get(provider_id, []) == images
        if same_text and same_logos:
            outcome.statuses[item.source.key] = UNCHANGED
            continue
        Provider.objects.filter(pk=provider_id).update(
            name=data["name"], description=description, updated_at=now
        )
        if not same_logos:
            ProviderImage.objects.filter(provider_id=provider_id).delete()
            insert_rows(ProviderImage, _logos(provider_id, data["images"]))
        outcome.statuses[item.source.key] = UPDATED if old is not None else CREATED


def _logos(provider_id, images):
    return [
        ProviderImage(
            provider_id=provider_id,
            url=image["url"],
            width=image["width"],
            height=image["height"],
            position=position,
        )
        for position, image in enumerate(images)
    ]


def _fill_missing_logos(items, providers):
    """Providers without logos take the ones the first news file naming them carries."""
    wanted = {}
    for item in items:
        provider = item.data["provider"]
        if provider["images"]:
            wanted.setdefault(providers[provider["domain"]], provider["images"])
    if not wanted:
        return
    have = set(
        ProviderImage.objects.filter(provider_id__in=wanted).values_list("provider_id", flat=True)
    )
    insert_rows(
        ProviderImage,
        [
            logo
            for provider_id, images in wanted.items()
            if provider_id not in have
            for logo in _logos(provider_id, images)
        ],
    )


def _follow_moved_urls(items, known, outcome):
    """Source-key identity: a file whose URL changed takes its own story to the new URL."""
    owned = {row.article_id for row in known.values() if row.article_id}
    if not owned:
        return known
    urls = dict(Article.objects.filter(pk__in=owned).values_list("pk", "canonical_url"))
    moved = False
    for item in items:
        row = known.get(item.source.key)
        if row and row.article_id and urls.get(row.article_id) != item.data["canonical"]:
            # Fresh reads: an earlier move in this chunk may have merged this story.
            article_id = (
                SourceFile.objects.filter(key=item.source.key)
                .values_list("article_id", flat=True)
                .first()
            )
            if article_id:
                move_story(article_id, item.data["canonical"], outcome)
                moved = True
    if not moved:
        return known
    return {row.key: row for row in SourceFile.objects.filter(key__in=list(known))}


def move_story(article_id, canonical, outcome):
    """Give story ``article_id`` the URL ``canonical``, merging the story that had it."""
    story = Article.objects.get(pk=article_id)
    if story.canonical_url == canonical:
        return
    other = Article.objects.filter(canonical_url=canonical).first()
    if other is not None:
        if other.grouped_at is not None:
            outcome.deleted.append(clustering.Deleted.of(other))
        merge_stories(other, into=story)
        if other.cluster_id:
            outcome.cluster_ids.add(other.cluster_id)
    Article.objects.filter(pk=story.pk).update(canonical_url=canonical)


def merge_stories(other, into):
    """Move everything that points at ``other`` to ``into`` and delete the emptied row."""
    story = into
    RelatedListing.objects.filter(target=other).update(target=story)
    # The file being written replaces the survivor's own list; keep positions unique meanwhile.
    offset = (
        RelatedListing.objects.filter(source=story)
        .order_by("-position")
        .values_list("position", flat=True)
        .first()
    )
    start = 0 if offset is None else offset + 1
    for index, listing in enumerate(
        RelatedListing.objects.filter(source=other).order_by("position")
    ):
        RelatedListing.objects.filter(pk=listing.pk).update(source=story, position=start + index)
    SourceFile.objects.filter(article=other).update(article=story)
    if not ArticleImage.objects.filter(article=story).exists():
        ArticleImage.objects.filter(article=other).update(article=story)
    ClusterOverride.objects.filter(article=other).update(article=story)
    ClusterOverride.objects.filter(other_article=other).update(other_article=story)
    ModerationEvent.objects.filter(article=other).update(article=story)
    if other.published_decided_at and not story.published_decided_at:
        Article.objects.filter(pk=story.pk).update(
            published=other.published,
            published_decided_at=other.published_decided_at,
            published_decided_by=other.published_decided_by_id,
        )
    other.delete()


def _write_news(items, known, outcome, now):
    # Stored stories as plain rows for update_rows, like _new_story's for insert_rows:
    # a model instance each cost more than the rest of its reading.
    urls = {item.data["canonical"] for item in items}
    stories = {
        row["canonical_url"]: SimpleNamespace(**row)
        for part in in_slices(urls)
        for row in Article.objects.filter(canonical_url__in=part).values(*STORY_STATE)
    }
    # Stories only listed need no more than their ids: no model instance each.
    listed = {listing["canonical"] for item in items for listing in item.data["related"]}
    listed_ids = {
        url: pk
        for part in in_slices(listed - urls)
        for url, pk in Article.objects.filter(canonical_url__in=part).values_list(
            "canonical_url", "pk"
        )
    }
    provider_names = {}
    for item in items:
        provider_names.setdefault(item.data["provider"]["domain"], item.data["provider"]["name"])
        for listing in item.data["related"]:
            if listing["provider"]:
                provider_names.setdefault(
                    listing["provider"]["domain"], listing["provider"]["name"]
                )
    providers = ensure_providers(provider_names, now)
    _fill_missing_logos(items, providers)
    topics = ensure_topics([name for item in items for name in item.data["topics"]], now)

    new = {}  # canonical URL -> story not yet in the database
    changed = {}  # canonical URL -> stored story the files change
    written = {}  # canonical URL -> (story, item): the last file for a story sets its parts
    article_of = {}
    for item in items:
        data = item.data
        canonical = data["canonical"]
        story = stories.get(canonical) or new.get(canonical)
        if story is None:
            story = _new_story(
                canonical_url=canonical,
                slug=story_slug(data["story"]["title"], canonical),
                source_key=item.source.key,
                first_seen_at=now,
            )
            new[canonical] = story
            status = CREATED
        elif not story.is_file_backed:
            status = CREATED  # a related-only story becomes a file-backed one, same row
            changed[canonical] = story
        elif story.content_hash == data["content_hash"]:
            status = UNCHANGED
        else:
            status = UPDATED  # an existing story, or one an earlier file of this chunk created
            if story.pk:
                changed[canonical] = story
        outcome.statuses[item.source.key] = status
        article_of[item.source.key] = canonical
        if status != UNCHANGED:
            _apply_file(story, item, providers[data["provider"]["domain"]], now)
            written[canonical] = (story, item)

    for _, item in written.values():
        for listing in item.data["related"]:
            url = listing["canonical"]
            if url not in stories and url not in listed_ids and url not in new:
                new[url] = _related_only_story(listing, providers, now)

    claim_unique_slugs(Article, new.values())
    new_ids = insert_rows(Article, new.values(), ids_by="canonical_url")
    for story, pk in zip(new.values(), new_ids, strict=True):
        story.pk = pk
    update_rows(Article, changed.values(), FILE_FIELDS)

    def story_id(url):
        return listed_ids[url] if url in listed_ids else (stories.get(url) or new[url]).pk

    rewritten = [story.pk for url, (story, _) in written.items() if url not in new]
    ArticleImage.objects.filter(article_id__in=rewritten).delete()
    ArticleTopic.objects.filter(article_id__in=rewritten).delete()
    RelatedListing.objects.filter(source_id__in=rewritten).delete()
    images, article_topics, listings = [], [], []
    for story, item in written.values():
        data = item.data
        outcome.article_ids.add(story.pk)
        images.extend(
            {
                "article_id": story.pk,
                "url": image["url"],
                "width": image["width"],
                "height": image["height"],
                "is_cached": image["isCached"],
                "title": image["title"],
                "position": position,
            }
            for position, image in enumerate(data["images"])
        )
        article_topics.extend(
            {"article_id": story.pk, "topic_id": topics[name].pk} for name in data["topics"]
        )
        for position, listing in enumerate(data["related"]):
            target_id = story_id(listing["canonical"])
            outcome.article_ids.add(target_id)
            listings.append(_listing(story.pk, target_id, position, listing))
    insert_rows(ArticleImage, images)
    insert_rows(ArticleTopic, article_topics)
    insert_rows(RelatedListing, listings)
    outcome.article_of = {key: story_id(url) for key, url in article_of.items()}


def _apply_file(story, item, provider_id, now):
    values = item.data["story"]
    for name, value in values.items():
        setattr(story, name, value)
    # Dates in the future are clamped to when the story was first seen.
    if story.published_at and story.published_at > now:
        story.published_at = story.first_seen_at
    if story.published_decided_at is None:
        # A file that does not say is not public until an editor decides.
        story.published = bool(values["file_published"])
    story.provider_id = provider_id
    story.is_file_backed = True
    story.source_key = story.source_key or item.source.key
    story.content_hash = item.data["content_hash"]
    story.updated_at = now


@cache
def _new_story_columns():
    """Every column of a new Article as Django fills it, by attribute name (the
    callers set both dates, whose defaults are callables)."""
    return column_defaults(Article)


def _new_story(**values):
    """A new story as a row for insert_rows, not a model instance: a load creates
    them by the hundred thousand, and building an instance each cost more than its insert."""
    return SimpleNamespace(**{**_new_story_columns(), "pk": None, **values})


def _related_only_story(listing, providers, now):
    published_at = listing["published_at"]
    return _new_story(
        canonical_url=listing["canonical"],
        slug=story_slug(listing["title"], listing["canonical"]),
        title=listing["title"],
        excerpt=listing["excerpt"],
        published_at=published_at if published_at is None or published_at <= now else now,
        web_url=listing["web_url"],
        amp_web_url=listing["amp_web_url"],
        cdn_amp_web_url=listing["cdn_amp_web_url"],
        type=listing["type"],
        quality=listing["quality"],
        provider_id=providers[listing["provider"]["domain"]] if listing["provider"] else None,
        published=None,
        is_file_backed=False,
        first_seen_at=now,
        updated_at=now,
    )


def _listing(source_id, target_id, position, listing):
    provider = listing["provider"] or {"name": "", "domain": ""}
    return {
        "source_id": source_id,
        "target_id": target_id,
        "position": position,
        "title": listing["title"],
        "excerpt": listing["excerpt"],
        "published_at": listing["published_at"],
        "web_url": listing["web_url"],
        "amp_web_url": listing["amp_web_url"],
        "cdn_amp_web_url": listing["cdn_amp_web_url"],
        "type": listing["type"],
        "quality": listing["quality"],
        "provider_name": provider["name"],
        "provider_domain": provider["domain"],
        "images": listing["images"],
    }


# The run --------------------------------------------------------------------------


def load(paths, *, dry_run=False, progress=None):
    """Load files and folders; ``dry_run`` validates and counts, then rolls everything back.

    ``progress`` is called with the number of files done since the last call.
    Raises ``UnusablePath`` before loading anything if a path cannot be used.
    """
    paths = [str(path) for path in paths]
    check_paths(paths)
    result = LoadResult()
    with fewer_collections(), transaction.atomic():
        # Before any write: a concurrent load waits here rather than deadlocking later.
        versioning.hold()
        cluster_ids = set()
        with _page_indexes_built_after():
            for batch, prepared in _prepared_batches(_batches(iter_sources(paths))):
                cluster_ids |= _load_batch(prepared, result)
                if progress:
                    progress(len(batch))
            if result.changed and not dry_run:
                clustering.update_for_articles(result.article_ids, deleted=result.deleted)
                if cluster_ids:
                    clustering.refresh_clusters(cluster_ids)
                versioning.bump()
        if dry_run:
            transaction.set_rollback(True)
    return result


# The tables whose indexes for the pages a first load builds at its end.
PAGE_INDEXED_MODELS = (Article, Cluster, ClusterTopic)


@contextmanager
def _page_indexes_built_after():
    """On SQLite, a load into an empty database builds the indexes of the
    stories', clusters' and topic pages once, after its writes and its
    clustering, instead of row by row.

    Files arrive in no order of date, so each new story, and then each new
    cluster, went into every date and score index at a random place: a page
    read and written back each, once those indexes outgrow SQLite's cache. The
    load's own queries need none of them (the unique indexes stay, and so do
    other tables': merging stories looks listings up by target). Inside the
    load's transaction, so an error takes the change back with the rest.
    """
    if connection.vendor != "sqlite" or Article.objects.exists():
        yield
        return
    editor = connection.schema_editor()
    with connection.cursor() as cursor:
        for model in PAGE_INDEXED_MODELS:
            for index in model._meta.indexes:
                cursor.execute(editor.sql_delete_index % {"name": editor.quote_name(index.name)})
    yield
    with connection.cursor() as cursor:
        for model in PAGE_INDEXED_MODELS:
            for index in model._meta.indexes:
                cursor.execute(str(index.create_sql(model, editor)))


def _batches(sources):
    """Sources a bounded number of files and bytes at a time."""
    limit = settings.LOADER_MAX_FILE_BYTES
    batch, size = [], 0
    for source in sources:
        batch.append(source)
        try:
            file_size = os.path.getsize(source.path)
        except OSError:
            file_size = 0
        size += file_size if file_size <= limit else 0  # a file over the limit is never read
        if len(batch) >= CHUNK_FILES or size >= CHUNK_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _prepared_batches(batches):
    """Each batch with its files read and validated by ``prepare``, in order.

    A load of more than one batch parses in worker processes, a few batches ahead
    of the database writes here; a small one parses in this process. Every
    database query stays in this process, inside the load's transaction.
    """
    batches = iter(batches)
    first = list(itertools.islice(batches, 2))
    if len(first) < 2 or PARSE_WORKERS < 1:
        for batch in itertools.chain(first, batches):
            yield batch, prepare(*_task(batch))
        return
    # Forked workers need no set-up and only read files; they never touch the database.
    pool = ProcessPoolExecutor(PARSE_WORKERS, mp_context=multiprocessing.get_context("fork"))
    pending = deque()
    try:
        for batch in itertools.chain(first, batches):
            pending.append((batch, pool.submit(prepare, *_task(batch))))
            if len(pending) > PARSE_WORKERS + 1:  # bounded: memory stays flat in N
                yield _completed(*pending.popleft())
        while pending:
            yield _completed(*pending.popleft())
    finally:
        pool.shutdown(cancel_futures=True)


def _task(batch):
    """``prepare``'s arguments: the batch's files, each source key once, and their stored hashes."""
    distinct = {}
    for source in batch:
        distinct.setdefault(source.key, source)  # the same file named twice on the command line
    sources = list(distinct.values())
    return sources, _raw_hashes(sources), settings.LOADER_MAX_FILE_BYTES


def _completed(batch, future):
    try:
        return batch, future.result()
    except BrokenProcessPool:  # a worker died (out of memory): this batch parses here
        return batch, prepare(*_task(batch))


def _raw_hashes(sources):
    return dict(
        SourceFile.objects.filter(key__in=[source.key for source in sources]).values_list(
            "key", "raw_hash"
        )
    )


def prepare(sources, raw_hashes, limit):
    """Read and validate files: ``(source, outcome)`` pairs in order, picklable.

    The outcome is ``(FAILED, field, message)``, ``(UNCHANGED, raw hash)`` for
    bytes ``raw_hashes`` already holds (not parsed), or ``(PARSED, Parsed)``.
    """
    prepared = []
    for source in sources:
        try:
            raw = read_bytes(source.path, limit)
            digest = raw_digest(raw)
            if raw_hashes.get(source.key) == digest:
                outcome = (UNCHANGED, digest)
            else:
                outcome = (PARSED, parse(source, raw, digest))
        except FileError as exc:
            outcome = (FAILED, exc.field, exc.message)
        except (RecursionError, MemoryError):
            outcome = (FAILED, "file", "is too deeply nested or too large to read")
        except Exception as exc:  # noqa: BLE001 -- one bad file must not stop the run
            outcome = (FAILED, "file", f"cannot be loaded ({exc.__class__.__name__}: {exc})")
        prepared.append((source, outcome))
    return prepared


def _load_batch(prepared, result):
    """Count failed and unchanged files, write the rest; returns clusters to refresh.

    Stored raw hashes are read again: an earlier batch of this run may have stored
    a source key after ``prepare`` compared it.
    """
    raw_hashes = _raw_hashes([source for source, _ in prepared])
    items = []
    for source, outcome in prepared:
        result.files += 1
        if outcome[0] == UNCHANGED and raw_hashes.get(source.key) != outcome[1]:
            [(_, outcome)] = prepare([source], raw_hashes, settings.LOADER_MAX_FILE_BYTES)
        status, detail = outcome[0], outcome[1:]
        if status == FAILED:
            _fail(result, source, *detail)
        elif status == UNCHANGED or raw_hashes.get(source.key) == detail[0].raw_hash:
            result.unchanged += 1
        else:
            items.append(detail[0])
    return _write(items, result)


def _write(items, result):
    """Write the chunk in one savepoint; if that fails, file by file in a savepoint each."""
    if not items:
        return set()
    try:
        with transaction.atomic():
            outcomes = [(items, write_chunk(items))]
    except Exception:  # noqa: BLE001 -- retried file by file below to find the culprit
        outcomes = []
        for item in items:
            try:
                with transaction.atomic():
                    outcomes.append(([item], write_chunk([item])))
            except Exception as exc:  # noqa: BLE001
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                _fail(result, item.source, "database", f"could not be stored ({message})")
    cluster_ids = set()
    for written, outcome in outcomes:
        for item in written:
            status = outcome.statuses[item.source.key]
            setattr(result, status, getattr(result, status) + 1)
            result.warnings.extend(Problem(item.source.path, *warning) for warning in item.warnings)
        result.article_ids.update(outcome.article_ids)
        result.deleted += outcome.deleted
        cluster_ids |= outcome.cluster_ids
    return cluster_ids


def _fail(result, source, part, message):
    result.failed += 1
    result.errors.append(Problem(source.path, part, message))
