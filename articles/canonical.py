"""URL checks and canonical URLs, the identity of a story.

``link_url`` returns the URL as published, made safe for an ``href``: entities
decoded, spaces and non-ASCII percent-encoded, only absolute http(s).
``canonical_url`` also lower-cases scheme and host, drops the default port, the
fragment and tracking parameters, so syndication and newsletter variants of one
article are one story. Meaningful query strings (``?p=121777``) are kept.
"""

import re
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

from .text import decode_entities

MAX_URL_LENGTH = 2000
ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
# Campaign and click identifiers added by newsletters, social sites and ad networks.
# ``mid`` (Daily Mail newsletters) and ``_mc``/``cid``/``elq_*`` (Dark Reading's
# Eloqua mailings) were seen duplicating stories in real data.
TRACKING_PARAMETERS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "yclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_mc",
        "mid",
        "cid",
        "elq",
        "elqtrack",
        "elqtrackid",
        "mkt_tok",
        "_hsenc",
        "_hsmi",
        "ocid",
        "cmpid",
        "smid",
        "ncid",
        "ref_src",
        "ico",
        "via",
        "mod",
    }
)
TRACKING_PREFIXES = ("utm_", "elq_", "__twitter", "_ga")
# Characters left as they are when percent-encoding; ``%`` keeps existing escapes intact.
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"
_NEEDS_QUOTING = re.compile(r"[^A-Za-z0-9/%:@!$&'()*+,;=\-._~?#]")
# Most URLs: lower-case http(s), a plain host and nothing to quote. They are
# split here as urlsplit would split them, in a fraction of its time.
_PLAIN_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9.])?")
_PLAIN_URL = re.compile(
    r"(https?)://(" + _PLAIN_HOST.pattern + r")([/?#][A-Za-z0-9/%:@!$&'()*+,;=\-._~?#]*)?"
)
_SPACE = re.compile(r"\s")
# A bracketed (IPv6) host with nothing but a port after it; urlsplit lets "[::1]é" through.
_BRACKETED_NETLOC = re.compile(r"(?:[^@]*@)?\[[0-9A-Za-z:.%]+\](?::[0-9]*)?")
_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidURL(ValueError):
    """A URL that cannot be stored; the message says why."""


def link_url(value):
    """The published URL, checked and made safe for links; raises ``InvalidURL``."""
    return _checked(value)[0]


def canonical_url(value):
    """The identity of the story at ``value``; raises ``InvalidURL``."""
    return _canonical(_checked(value)[1])


def link_and_canonical(value):
    """Both forms with one parse; raises ``InvalidURL``."""
    url, parts = _checked(value)
    return url, _canonical(parts)


def _checked(value):
    """The link form of ``value`` and its ``urlsplit`` parts."""
    if not isinstance(value, str):
        raise InvalidURL("must be a string")
    url = decode_entities(value).strip()
    if not url:
        raise InvalidURL("is empty")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"is longer than {MAX_URL_LENGTH} characters")
    # YAML's "\ud800" escape yields a lone surrogate, which no URL can encode.
    if not url.isascii() and _SURROGATE.search(url):
        raise InvalidURL("contains an invalid Unicode character (a lone surrogate)")
    plain = _PLAIN_URL.fullmatch(url)
    if plain:
        return url, _plain_parts(*plain.groups())
    return _split_and_checked(url)


def _plain_parts(scheme, host, rest):
    """``urlsplit``'s parts of a URL ``_PLAIN_URL`` matched."""
    path, _, fragment = (rest or "").partition("#")
    path, _, query = path.partition("?")
    return SplitResult(scheme, host, path, query, fragment)


def _split_and_checked(url):
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme and scheme not in ALLOWED_SCHEMES:
        raise InvalidURL(f"uses {scheme}:, only http and https links are accepted")
    if not scheme or not parts.netloc:
        raise InvalidURL("is not an absolute http(s) URL")
    if not parts.hostname or _SPACE.search(parts.netloc):
        raise InvalidURL("has no valid host")
    if "[" in parts.netloc and not _BRACKETED_NETLOC.fullmatch(parts.netloc):
        raise InvalidURL("has no valid host")
    if not _NEEDS_QUOTING.search(url):
        if parts.scheme != scheme:
            parts = parts._replace(scheme=scheme)
            url = urlunsplit(parts)
        return url, parts
    netloc = parts.netloc if parts.netloc.isascii() else _ascii_netloc(parts.hostname, port)
    parts = parts._replace(
        scheme=scheme,
        netloc=netloc,
        path=quote(parts.path, safe=_SAFE_PATH),
        query=quote(parts.query, safe=_SAFE_QUERY),
        fragment=quote(parts.fragment, safe=_SAFE_QUERY),
    )
    url = urlunsplit(parts)
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"is longer than {MAX_URL_LENGTH} characters")
    return url, parts


def _ascii_netloc(hostname, port):
    try:
        host = hostname.encode("idna").decode()
    except UnicodeError:
        raise InvalidURL("has an invalid international host name") from None
    return host if port is None else f"{host}:{port}"


def _host_and_port(parts):
    """``parts.hostname`` without a trailing dot and ``parts.port`` (each parses the netloc)."""
    if _PLAIN_HOST.fullmatch(parts.netloc):
        return parts.netloc.rstrip("."), None
    return parts.hostname.rstrip("."), parts.port


def _canonical(parts):
    host, port = _host_and_port(parts)
    if ":" in host:  # an IPv6 address: urlsplit's hostname drops its brackets
        host = f"[{host}]"
    netloc = host if port is None or port == DEFAULT_PORTS[parts.scheme] else f"{host}:{port}"
    if "@" in parts.netloc:
        netloc = parts.netloc.rpartition("@")[0] + "@" + netloc
    query = parts.query
    if query:
        query = "&".join(pair for pair in query.split("&") if pair and not _is_tracking(pair))
    return urlunsplit((parts.scheme, netloc, parts.path or "/", query, ""))


def _is_tracking(pair):
    name = pair.partition("=")[0].lower()
    return name in TRACKING_PARAMETERS or name.startswith(TRACKING_PREFIXES)


def host_of(value):
    """The lower-cased host of an http(s) URL; raises ``InvalidURL``."""
    return _checked(value)[1].hostname.rstrip(".")
