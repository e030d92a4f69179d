"""Plain-text cleaning for titles and excerpts from news files.

Files carry HTML entities (``H&#038;M``), no-break spaces, CR/LF escapes, double
spaces and the odd mojibake title (``â€˜Sensitive Dataâ€™``). Everything stored is
plain text: pages escape it, nothing from a file is ever rendered as HTML.
"""

import html
import re

import ftfy

# Only entities with their closing semicolon: ``html.unescape`` alone would also
# turn ``&reg=1`` in a query string into ``®=1``.
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# C0/C1 control characters and the invisible format characters that only break layouts.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2060\ufeff]")
# Characters that UTF-8 read as Windows-1252 leaves behind; ftfy runs only when one is present.
_MOJIBAKE_HINTS = frozenset("ÃÂâÅÄ")
# Excerpts that say nothing; stored as empty.
PLACEHOLDER_EXCERPTS = frozenset({"placeholder.", "placeholder", "na", "n/a", "english"})


def decode_entities(value):
    """Decode HTML entities once (``&amp;#038;`` stays ``&#038;``)."""
    if "&" not in value:
        return value
    return _ENTITY.sub(lambda match: html.unescape(match.group(0)), value)


def clean_text(value):
    """One line of plain text: entities decoded once, whitespace normalised, controls removed."""
    text = decode_entities(value)
    if not _MOJIBAKE_HINTS.isdisjoint(text):
        text = ftfy.fix_encoding(text)
    # Any run of whitespace (CR/LF, tabs, no-break and other Unicode spaces) becomes
    # one space: str.split() splits on what the regex \s matches, four times faster.
    text = _CONTROL.sub("", " ".join(text.split()))
    return text.strip()


def clean_excerpt(value):
    text = clean_text(value)
    return "" if text.lower() in PLACEHOLDER_EXCERPTS else text
