import pytest
from hypothesis import given
from hypothesis import strategies as st

from articles import canonical
from articles.canonical import InvalidURL, canonical_url, link_url
from articles.text import clean_excerpt, clean_text

CANONICAL = [
    # scheme and host case, default ports, fragments
    ("HTTPS://Example.COM/Path", "https://example.com/Path"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    ("http://example.com:443/a", "http://example.com:443/a"),
    ("https://example.com/a#comments", "https://example.com/a"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com./a", "https://example.com/a"),
    ("  https://example.com/a  ", "https://example.com/a"),
    ("http://[::1]:80/a", "http://[::1]/a"),
    ("https://u@[2001:DB8::1]:8443/a", "https://u@[2001:db8::1]:8443/a"),
    # path case and trailing slashes are the publisher's: kept
    ("https://example.com/News/Story/", "https://example.com/News/Story/"),
    ("https://example.com/a/", "https://example.com/a/"),
    # tracking parameters removed, meaningful ones kept in order
    ("https://example.com/a?utm_source=x&utm_medium=y", "https://example.com/a"),
    ("https://example.com/a?UTM_Campaign=x", "https://example.com/a"),
    ("https://example.com/a?fbclid=abc", "https://example.com/a"),
    ("https://example.com/a?gclid=abc&p=1", "https://example.com/a?p=1"),
    ("https://example.com/a?mc_cid=1&mc_eid=2", "https://example.com/a"),
    ("https://example.com/?p=121777", "https://example.com/?p=121777"),
    ("https://example.com/a?id=5&utm_source=x&page=2", "https://example.com/a?id=5&page=2"),
    ("https://example.com/a?b=2&a=1", "https://example.com/a?b=2&a=1"),
    ("https://example.com/a?", "https://example.com/a"),
    ("https://www.youtube.com/watch?v=abc123", "https://www.youtube.com/watch?v=abc123"),
    ("https://example.com/a?amp", "https://example.com/a?amp"),
    # the corpus pairs of README item 3
    (
        "https://www.dailymail.co.uk/news/article-9920349/Massive.html?mid=1",
        "https://www.dailymail.co.uk/news/article-9920349/Massive.html",
    ),
    (
        "https://www.darkreading.com/application-security/38m?_mc=NL_DR_EDT&cid=NL_DR"
        "&elq_mid=105848&elq_cid=22023705",
        "https://www.darkreading.com/application-security/38m",
    ),
    ("https://example.com/a?via=indexdotco", "https://example.com/a"),
    ("https://www.wsj.com/articles/x?mod=hp_lista_pos3", "https://www.wsj.com/articles/x"),
    # entities decoded once
    (
        "https://example.com/i.jpg?resize=620%2C497&#038;ssl=1",
        "https://example.com/i.jpg?resize=620%2C497&ssl=1",
    ),
    ("https://example.com/a?x=1&amp;y=2", "https://example.com/a?x=1&y=2"),
    ("https://example.com/a?x=1&amp;amp;y=2", "https://example.com/a?x=1&amp;y=2"),
    # bare names without a semicolon are query parameters, not entities
    ("https://example.com/a?x=1&reg=2", "https://example.com/a?x=1&reg=2"),
    # spaces and non-ASCII percent-encoded; existing escapes kept
    (
        "https://www.dbta.com/Editorial/News Flashes/x.aspx",
        "https://www.dbta.com/Editorial/News%20Flashes/x.aspx",
    ),
    ("https://futurecar.com/a/waymo’s-ride", "https://futurecar.com/a/waymo%E2%80%99s-ride"),
    ("https://example.com/caf%C3%A9", "https://example.com/caf%C3%A9"),
    ("https://bücher.example/a", "https://xn--bcher-kva.example/a"),
]


@pytest.mark.parametrize(("url", "expected"), CANONICAL)
def test_canonical_url(url, expected):
    assert canonical_url(url) == expected


REFUSED = [
    ("https://example.com/\ud800", "lone surrogate"),
    ("javascript:alert(1)", "only http and https"),
    ("JAVASCRIPT:alert(1)", "only http and https"),
    ("data:text/html;base64,PHNjcmlwdD4=", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("ftp://example.com/a", "only http and https"),
    ("/news/story", "not an absolute"),
    ("//example.com/story", "not an absolute"),
    ("example.com/story", "not an absolute"),
    ("", "is empty"),
    ("   ", "is empty"),
    ("https://example.com/" + "a" * 2000, "longer than 2000"),
    ("https://example.com:99999/a", "not a valid URL"),
    # Newer Pythons' urlsplit refuses these itself.
    ("http://[::1]é/a", "has no valid host|not a valid URL"),
    ("http://[::1]x:80/a", "has no valid host|not a valid URL"),
    ("https:///a", "not an absolute"),
    (42, "must be a string"),
]


@pytest.mark.parametrize(("url", "message"), REFUSED)
def test_refused_urls(url, message):
    with pytest.raises(InvalidURL, match=message):
        canonical_url(url)


def test_link_url_keeps_the_published_form():
    url = "https://Example.com/A B?utm_source=x&#038;p=1#top"
    assert link_url(url) == "https://Example.com/A%20B?utm_source=x&p=1#top"


TEXT = [
    ("H&#038;M Group", "H&M Group"),
    ("&amp;#038; once", "&#038; once"),
    ("It&#8217;s &#8220;new&#8221; &hellip;", "It\u2019s \u201cnew\u201d \u2026"),
    ("Security in Dataverse\u00a0", "Security in Dataverse"),
    ("two  spaces\r\nand\nlines\tand\u00a0nbsp", "two spaces and lines and nbsp"),
    ("bell\x07 and\x00 nul\u200b", "bell and nul"),
    (
        "following \u00e2\u20ac\u02dcSensitive Data\u00e2\u20ac\u2122 exposure",
        "following \u2018Sensitive Data\u2019 exposure",
    ),
    ("Café déjà vu", "Café déjà vu"),
]


@pytest.mark.parametrize(("raw", "expected"), TEXT)
def test_clean_text(raw, expected):
    assert clean_text(raw) == expected


def test_every_unicode_whitespace_run_is_one_space():
    spaces = [c for c in map(chr, range(0x110000)) if c.isspace()]
    assert len(spaces) > 20  # tabs and line breaks, no-break, em and ideographic spaces
    for space in spaces:
        assert clean_text(f" word{space}{space}word{space}") == "word word", repr(space)


@pytest.mark.parametrize("placeholder", ["Placeholder.", "NA", "English", "na\n", " na "])
def test_placeholder_excerpts_are_empty(placeholder):
    assert clean_excerpt(placeholder) == ""


def test_real_excerpts_are_kept():
    assert clean_excerpt("NASA launches") == "NASA launches"


@given(
    host=st.from_regex(r"[a-zA-Z0-9]{1,12}(\.[a-zA-Z]{2,6}){1,2}", fullmatch=True),
    path=st.text(st.characters(exclude_characters=";"), max_size=40),
    query=st.text(st.characters(exclude_characters=";"), max_size=40),
)
def test_canonical_url_is_stable(host, path, query):
    """Any input gives InvalidURL or a URL that canonicalises to itself.

    (Without ``;``: entities are decoded once, so ``&amp;#038;``
    canonicalises to ``&#038;`` and only a second pass would take it to ``&``.)
    """
    try:
        url = canonical_url(f"https://{host}/{path}?{query}")
    except InvalidURL:
        return
    assert canonical_url(url) == url
    assert url.isascii() and " " not in url


def checked(check, url):
    try:
        return check(url)
    except InvalidURL as exc:
        return str(exc)


@given(
    scheme=st.sampled_from(["http", "https", "HTTPS", "ftp"]),
    userinfo=st.sampled_from(["", "user@", "a:b@"]),
    host=st.from_regex(r"[a-zA-Z0-9.\-]{0,16}|\[::1\]|bücher\.de", fullmatch=True),
    port=st.sampled_from(["", ":", ":80", ":8443", ":99999", ":x"]),
    rest=st.text(st.sampled_from("aZ09/%:@!$&'()*+,;=-._~?# é\t[]"), max_size=30),
)
def test_plain_urls_are_split_as_urlsplit_splits_them(scheme, userinfo, host, port, rest):
    """The shortcut for plain URLs gives what urlsplit and its properties give."""
    url = f"{scheme}://{userinfo}{host}{port}{rest}"
    outcome = checked(canonical._checked, url)
    assert outcome == checked(canonical._split_and_checked, url.strip())
    if not isinstance(outcome, str):
        parts = outcome[1]
        assert canonical._host_and_port(parts) == (parts.hostname.rstrip("."), parts.port)


def test_the_shortcut_takes_the_common_urls():
    for url in [
        "https://www.example.com/a/b-c?id=5&x=%20#top",
        "http://example.com.",
        "https://a.b",
    ]:
        plain = canonical._PLAIN_URL.fullmatch(url)
        assert plain and canonical._plain_parts(*plain.groups()) == canonical.urlsplit(url)
    for url in [
        "HTTPS://example.com/",
        "https://Example.com/",
        "https://example.com:80/",
        "https://u@example.com/",
    ]:
        assert not canonical._PLAIN_URL.fullmatch(url)
