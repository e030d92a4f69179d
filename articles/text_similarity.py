"""How alike two stories read: normalised tokens of titles and excerpts.

Everything here is a pure function of one or two texts (no corpus statistics),
so a pair scores the same whether it is compared in a full rebuild or in an
incremental load: that is what keeps clustering order-independent.

Named things (IBM, Nvidia, Timnit Gebru, GPT-3) tell events apart far better
than topic words (facial recognition, self-driving), so tokens that look like
names weigh more. Without corpus statistics, a name is recognised by its
capitals: all-caps, or capitalised where a sentence would not capitalise it.

The site's beat is read per story too: a story's own topic names ("Power Apps",
"Computer Vision") and its outlet's name ("Microsoft" on microsoft.com) say
what it is filed under, not which event it reports, so they are dropped from
that story's text like the stop words, whatever their capitals.
"""

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter

# Outlet suffixes: "... | Charlotte Observer", "... - Reuters", "... – Jaweb".
_SUFFIX = re.compile(r"\s+[|\-–—]\s+([^|\-–—]{1,60})$")
_WORD_AND_GAP = re.compile(r"([A-Za-z0-9]+)([^A-Za-z0-9]*)")
_SENTENCE_MARKS = frozenset(".!?:;")
_TOKEN_OF = itemgetter(0)  # of a (token, raw word, starts a sentence) from _words
_POSSESSIVE = re.compile(r"'s\b")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "‐": "-", "‑": "-"})

ENTITY_WEIGHT = 3.0
# Stories that share no name at all are discounted this much.
NAMELESS_FACTOR = 0.6
# Wire copy re-run under another masthead keeps its headline and most of its
# lede; shorter headlines are too generic to call two stories one copy, and a
# shared headline over different ledes is a recurring column, not a re-run.
COPY_TITLE_MIN_TOKENS = 4
COPY_LEDE_OVERLAP = 0.5

_STOP_WORDS_TEXT = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers herself him himself his how
    i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves says said say new news today year years
    week day days get gets got make makes made one two first last latest via amid
    according just like says still yet even may might must shall us its it's s t
    """
# The beat itself: words nearly every story on this site carries, acronyms included.
_BEAT_WORDS_TEXT = "ai artificial intelligence tech technology ceo ml uk"
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split()) | frozenset(_BEAT_WORDS_TEXT.split())


def strip_outlet_suffix(title):
    """Drop a trailing " | Outlet" / " - Outlet" that names the publisher, not the event.

    Only a short, name-like tail goes: "– … after years of turmoil" stays.
    """
    match = _SUFFIX.search(title)
    if not match:
        return title
    tail = match.group(1).strip()
    words = tail.split()
    looks_like_name = 0 < len(words) <= 4 and all(w[:1].isupper() or w[:1].isdigit() for w in words)
    return title[: match.start()].rstrip() if looks_like_name else title


def _normalise(text):
    text = text or ""
    if not text.isascii():  # NFKC and the quotes change nothing in ASCII
        text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    # Possessives are the same name: "OpenAI's" is "OpenAI".
    return _POSSESSIVE.sub("", text) if "'" in text else text


@lru_cache(maxsize=8192)
def _beat_phrase(phrase):
    """(regex alternative, stems every match contains) for one beat phrase, or None."""
    words = re.findall(r"[A-Za-z0-9]+", _normalise(phrase))
    if not words:
        return None
    # Words are ASCII letters and digits: nothing in a stem needs escaping.
    stems = tuple(_singular(w.lower()) for w in words)
    return r"[\s\-]+".join(stem + "s?" for stem in stems), stems


@lru_cache(maxsize=1024)
def _beat_pattern(phrases):
    """One pattern for a story's beat phrases, any case, plurals included."""
    alternatives = [_beat_phrase(phrase)[0] for phrase in sorted(phrases, key=len, reverse=True)]
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)


def _singular(word):
    stem = _stem(word)
    return stem if stem == word[:-1] else word


def strip_beat(text, beat):
    """``text`` without the story's beat phrases (see the module docstring)."""
    # Only phrases whose every word occurs can match. Dropping the others first
    # keeps the set of patterns to compile small: most stories never name their outlet.
    lowered = text.lower()
    present = []
    for phrase in beat:
        parsed = _beat_phrase(phrase)
        if parsed is None:
            continue
        for stem in parsed[1]:
            if stem not in lowered:
                break
        else:
            present.append(phrase)
    return _beat_pattern(frozenset(present)).sub(" ", text) if present else text


def _stem(word):
    """Fold plurals so "reforms" meets "reform"; deliberately crude and predictable."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


# Each word's token, or None for a word not worth comparing: one lookup a word
# instead of four calls. Emptied when full, so memory stays bounded.
_TOKENS = {}
_TOKENS_MAX = 65536


def _token(raw):
    """``raw``'s token (see _TOKENS), worked out and remembered."""
    if len(_TOKENS) >= _TOKENS_MAX:
        _TOKENS.clear()
    word = raw.lower()
    token = _TOKENS[raw] = None if word in STOP_WORDS or len(word) < 2 else _stem(word)
    return token


def _words(text):
    """(token, raw word, starts a sentence) for every word worth comparing."""
    result = []
    sentence_start = True
    tokens = _TOKENS
    for raw, gap in _WORD_AND_GAP.findall(text):
        token = tokens[raw] if raw in tokens else _token(raw)
        if token is not None:
            result.append((token, raw, sentence_start))
        sentence_start = gap != " " and not _SENTENCE_MARKS.isdisjoint(gap)
    return result


def _is_title_case(words):
    long_words = [raw for _, raw, _ in words if len(raw) > 3]
    if not long_words:
        return True
    capitalised = sum(1 for raw in long_words if raw[:1].isupper())
    return capitalised / len(long_words) > 0.6


def _name_tokens(words, trust_capitals):
    # A word in lower case is none of these: most words, ruled out with one test.
    return {
        token
        for token, raw, starts in words
        if not raw.islower()
        and (
            (len(raw) >= 2 and raw.isupper() and raw.isalpha())
            or (not raw[1:].islower() and raw[1:].isalpha())  # DeepMind, OpenAI, iPhone
            or (trust_capitals and not starts and raw[:1].isupper())
            or (raw.isdigit() and len(raw) >= 2)
        )
    }


@dataclass(frozen=True)
class StoryText:
    """The comparable form of one story."""

    title_tokens: frozenset
    tokens: frozenset
    names: frozenset
    lede_tokens: frozenset
    # The headline's words, for finding re-runs of the same copy ("" when too short).
    copy_key: str


def story_text(title, excerpt="", beat=()):
    """``beat``: the story's own topic and outlet names, to be ignored."""
    title = strip_beat(_normalise(strip_outlet_suffix(_normalise(title).strip())), beat)
    excerpt = strip_beat(_normalise(excerpt), beat)
    title_words = _words(title)
    excerpt_words = _words(excerpt)
    names = _name_tokens(title_words, trust_capitals=not _is_title_case(title_words))
    names |= _name_tokens(excerpt_words, trust_capitals=True)
    title_tokens = frozenset(map(_TOKEN_OF, title_words))
    lede_tokens = frozenset(map(_TOKEN_OF, excerpt_words))
    # Capitalised at the start of both headline and lede: "Uber abandons…" / "Uber has…".
    if title_words and title_words[0][1][:1].isupper():
        first = title_words[0][0]
        if first in lede_tokens and any(
            token == first and raw[:1].isupper() for token, raw, _ in excerpt_words
        ):
            names.add(first)
    copy_key = ""
    if len(title_words) >= COPY_TITLE_MIN_TOKENS:
        copy_key = " ".join(map(_TOKEN_OF, title_words))
    return StoryText(
        title_tokens=title_tokens,
        tokens=title_tokens | lede_tokens,
        names=frozenset(names),
        lede_tokens=lede_tokens,
        copy_key=copy_key,
    )


def _weight(tokens, names):
    return len(tokens) + (ENTITY_WEIGHT - 1) * len(tokens & names)


def own_weight(tokens, names):
    """The weight of ``tokens`` counting only these names: a lower bound for any pair."""
    return _weight(tokens, names)


def _weighted_dice(a, b, names):
    if not a or not b:
        return 0.0
    return 2 * _weight(a & b, names) / (_weight(a, names) + _weight(b, names))


def similarity(x, y):
    """0..1: how much two stories share, names counting more than topic words."""
    names = x.names | y.names
    # Headlines differ more than ledes for the same event, and the other way round.
    score = max(
        _weighted_dice(x.title_tokens, y.title_tokens, names),
        _weighted_dice(x.tokens, y.tokens, names),
    )
    # Two events on one beat share topic words ("self-driving car division"), not a
    # name both write as one ("Self-Driving" in a single headline is not enough).
    if (x.names & y.names).isdisjoint(x.tokens & y.tokens):
        score *= NAMELESS_FACTOR
    return score


def same_copy(x, y):
    """Wire copy re-run under another masthead: the same headline over much the same lede."""
    return (
        bool(x.copy_key)
        and x.copy_key == y.copy_key
        and (_weighted_dice(x.lede_tokens, y.lede_tokens, frozenset()) >= COPY_LEDE_OVERLAP)
    )
