"""Write a reproducible synthetic corpus of news files in the real format.

    python bench/make_corpus.py --count 10000 --seed 1 bench/out/corpus-10000/

Distributions follow the real corpus and the seeds: title and excerpt lengths,
excerpt words from a long-tailed vocabulary (as many distinct words per 700
excerpts as the real archive), with a few words shared by one event's coverage,
a Zipf spread of outlets, a topic tree with one root per file, one image on most
files, related lists of 0 to 60 items that link to other files of the corpus and
to related-only stories shared between files, same-event groups with
near-identical titles a few days apart, and the edge cases (CRLF, videos without
``webUrl``, HTML entities, no-break spaces, placeholder excerpts, mojibake,
tracking parameters, missing scores, ``heat: -1``, long URLs).

Same count and seed give the same bytes. ``--revision R --changed F`` rewrites a
fraction F of the files as a later crawl would (heat drift, new ``secured``,
retitled, related items added and removed, syndicated-copy URL swaps); files are
only written when their bytes differ, so switching revisions is cheap.
"""

import argparse
import base64
import itertools
import json
import random
import sys
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

FILES_PER_FOLDER = 1000
START = datetime(2019, 1, 1, tzinfo=UTC)
DAYS = 1946  # to the end of April 2024, as the real archive

# Deciles of the real files (titles, excerpts, related titles and excerpts).
TITLE_DECILES = [15, 38, 47, 52, 59, 65, 71, 78, 85, 98, 180]
EXCERPT_DECILES = [24, 93, 139, 173, 199, 236, 263, 301, 302, 305, 388]
QUALITY_DECILES = [0, 37, 53, 63, 71, 72, 72, 86, 87, 101, 189]
# (length range, weight): most files list nothing, a long tail lists up to 60.
RELATED_LENGTHS = [((0, 0), 40), ((1, 5), 35), ((6, 15), 12), ((16, 35), 9), ((36, 60), 4)]
EVENT_SIZES = [(1, 50), (2, 22), (3, 12), (4, 9), (5, 4), (6, 2), (8, 1)]

# fmt: off
OUTLETS = [
    ("Microsoft", "microsoft.com"), ("TechCrunch", "techcrunch.com"),
    ("VentureBeat", "venturebeat.com"), ("The Verge", "theverge.com"), ("Engadget", "engadget.com"),
    ("CNBC", "cnbc.com"), ("Forbes", "forbes.com"), ("Reuters", "reuters.com"),
    ("ZDNet", "zdnet.com"), ("TechRepublic", "techrepublic.com"), ("Neowin", "neowin.net"),
    ("Electronic Design", "electronicdesign.com"), ("Digital Journal", "digitaljournal.com"),
    ("On MSFT", "onmsft.com"), ("InfoWorld", "infoworld.com"),
    ("Business Insider", "businessinsider.com"), ("TechRadar", "techradar.com"),
    ("The Next Web", "thenextweb.com"), ("Washington Post", "washingtonpost.com"),
    ("New Scientist", "newscientist.com"), ("Scientific American", "scientificamerican.com"),
    ("Wired", "wired.com"), ("Ars Technica", "arstechnica.com"),
    ("The Register", "theregister.com"), ("SiliconANGLE", "siliconangle.com"),
    ("CNET", "cnet.com"), ("Gizmodo", "gizmodo.com"), ("Daily Mail", "dailymail.co.uk"),
    ("The Times", "thetimes.co.uk"), ("Chicago Tribune", "chicagotribune.com"),
    ("Electrek", "electrek.co"), ("Charlotte Observer", "charlotteobserver.com"),
    ("SC Media", "scmagazine.com"), ("Windows", "compsmag.com"),
    ("Analytics", "healthitanalytics.com"), ("New Zeeland PC World", "pcworld.co.nz"),
    ("ABC News", "go.com"), ("Armed robbery in Revesby", "miragenews.com"),
]
NAME_PARTS = [
    "Tech", "Daily", "Digital", "Cloud", "Data", "Silicon", "Future", "Code", "Signal", "Wire",
    "Byte", "Circuit", "Market", "Insider", "Review", "Journal", "Times", "Post", "Herald", "Lab",
]
COMPANIES = [
    "Microsoft", "Google", "IBM", "Amazon", "Nvidia", "Intel", "OpenAI", "DeepMind", "Meta",
    "Apple", "Tesla", "Waymo", "Uber", "Cruise", "Aurora", "Arm", "Qualcomm", "Salesforce",
    "Oracle", "SAP", "Accenture", "Baidu", "Alibaba", "Tencent", "Samsung", "Sony",
    "Boston Dynamics", "Anthropic", "Hugging Face", "Databricks", "Snowflake", "Palantir",
    "Adobe", "Cisco", "Dell", "HP", "AMD", "Huawei", "ByteDance", "Zoom", "Slack", "GitHub",
    "Alithya", "Intuit", "Siemens", "Bosch", "the FDA", "the EU", "MIT", "Stanford", "NHTSA",
    "Delhi Airport", "Facebook", "Clearview AI",
]
ACTIONS = [
    ("acquires", "buys", "to buy"), ("unveils", "launches", "introduces"),
    ("partners with", "teams up with", "joins forces with"), ("sells", "offloads", "to sell"),
    ("invests in", "backs", "pours money into"), ("announces", "reveals", "details"),
    ("expands", "grows", "scales up"), ("halts", "pauses", "stops"),
    ("opens", "debuts", "rolls out"), ("tests", "trials", "pilots"),
    ("is sued over", "faces lawsuit over", "is taken to court over"),
    ("wins", "lands", "secures"), ("cuts", "trims", "slashes"),
    ("delays", "postpones", "pushes back"),
]
OBJECTS = [
    "facial recognition", "self-driving cars", "a robotaxi service", "protein folding AI",
    "a chip maker", "its AI ethics team", "a text-to-image model", "a language model",
    "deepfake detection", "an AI startup", "medical imaging AI", "a data center",
    "cloud contracts", "a quantum computer", "edge AI chips", "a low-code platform",
    "canvas apps", "AI Builder", "model-driven apps", "a developer conference",
    "a speech assistant", "a recommendation engine", "a fraud detection system",
    "a drone program", "warehouse robots", "a coral reef project", "crowd monitoring cameras",
    "an exclusive license", "a research lab", "a translation tool", "a carbon footprint study",
    "an open-source toolkit", "a cybersecurity unit", "a GPU cluster", "a supercomputer",
    "a chatbot", "an AI safety board", "a smart city pilot", "a health app",
    "autonomous trucks", "a satellite network", "an AR headset", "a payments platform",
]
TAILS = [
    "", "", "", "", " for $40 billion", " in Texas and New Mexico", ", report says",
    " amid pandemic", " after years of turmoil", " as rivals close in", " to fight bias",
    " in Europe", " in India", " for police", " for hospitals", " ahead of earnings",
    ": what it means", " – and why it matters",
]
WORDS = [
    "the", "company", "said", "on", "Monday", "that", "its", "new", "system", "would", "help",
    "customers", "process", "data", "faster", "while", "reducing", "costs", "and", "improving",
    "accuracy", "across", "cloud", "and", "edge", "deployments", "researchers", "found", "that",
    "the", "model", "outperformed", "earlier", "approaches", "on", "several", "benchmarks",
    "regulators", "are", "expected", "to", "review", "the", "deal", "which", "would", "combine",
    "two", "of", "the", "largest", "players", "in", "the", "market", "analysts", "say", "the",
    "move", "signals", "a", "shift", "in", "strategy", "as", "demand", "for", "artificial",
    "intelligence", "grows", "engineers", "trained", "the", "network", "on", "millions", "of",
    "images", "and", "text", "samples", "collected", "from", "public", "sources", "critics",
    "warned", "about", "privacy", "surveillance", "and", "bias", "in", "automated", "decisions",
    "executives", "told", "reporters", "the", "rollout", "begins", "next", "quarter", "in", "the",
    "United", "States", "and", "Europe",
]
ENTITIES = [
    "&#8217;", "&#8216;", "&#8220;", "&#8221;", "&#8211;", "&#8212;", "&#8230;", "&#038;",
    "&amp;", "&nbsp;", "&hellip;",
]
PLACEHOLDERS = ["Placeholder.", "NA", "English", "na\n"]
TRACKING = [
    "?utm_source=twitter&utm_medium=social", "?mid=1", "?_mc=RSS.FEED", "?fbclid=IwAR0x",
    "?ico=related-posts", "?mod=hp_lista_pos3",
]
SECTIONS = ["news", "tech", "business", "2021/ai", "story", "en-us/blog", "articles", "science"]
# fmt: on

TOPIC_TREE = {
    "Artificial Intelligence": [
        ("Computer Vision", "CV"),
        ("Machine Learning", "ML"),
        ("Robotics", ""),
        ("AI in Healthcare", ""),
        ("AI in Autos", ""),
        ("Facebook AI", ""),
        ("IBM AI", ""),
        ("Natural Language Processing", "NLP"),
        ("AI Ethics", ""),
        ("Deep Learning", ""),
        ("AI Chips", ""),
        ("Self-Driving Cars", ""),
    ],
    "Power Apps": [
        ("Canvas apps", "Canvas apps"),
        ("Model-driven apps", "Model-driven apps"),
        ("Common Data Service", "CDS"),
        ("AI Builder", ""),
        ("Portals", ""),
        ("Teams integration", ""),
    ],
}
ROOT_WEIGHTS = [("Artificial Intelligence", 70), ("Power Apps", 30)]


def _vocabulary(size=6000):
    """Made-up words in a fixed order: a Zipf draw over them reads like prose's long tail."""
    onsets = ["b", "br", "c", "d", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "pl", "r", "s",
              "st", "t", "tr", "v", "w"]  # fmt: skip
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou"]
    codas = ["", "n", "r", "s", "t", "l", "m", "nd", "st", "ck"]
    rng = random.Random("vocabulary")
    words = set()
    while len(words) < size:
        length = rng.choice([2, 2, 3, 3, 4])
        syllables = [rng.choice(onsets) + rng.choice(vowels) for _ in range(length)]
        words.add("".join(syllables) + rng.choice(codas))
    # Sorted before shuffling: a set's order changes with every process's string hashing.
    words = sorted(words)
    rng.shuffle(words)
    return words


VOCABULARY = _vocabulary()
# Zipf weights, cumulated once: rng.choices() then bisects instead of summing per call.
VOCABULARY_WEIGHTS = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(VOCABULARY))))
# Share of an excerpt's words from the long tail rather than the common phrasing of WORDS.
TAIL_SHARE = 0.5


def weighted(rng, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights)[0]


def from_deciles(rng, deciles):
    bucket = rng.randrange(len(deciles) - 1)
    return rng.randint(deciles[bucket], deciles[bucket + 1])


def slugify(text, limit=120):
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words = "".join(c if c.isalnum() else " " for c in text).split()
    return "-".join(words)[:limit].strip("-") or "story"


def quote(text):
    """A YAML double-quoted scalar, escaped as the real files are (``\\"``, ``\\n``, ``\\r``)."""
    return json.dumps(text, ensure_ascii=False)


def secured_blob(rng):
    first = rng.randbytes(16 * rng.randint(15, 25))
    return f"{base64.b64encode(first).decode()};{base64.b64encode(rng.randbytes(16)).decode()}"


class Corpus:
    """Everything about a corpus that other files refer to, built once from the seed."""

    def __init__(self, count, seed):
        self.count, self.seed = count, seed
        rng = random.Random(f"{seed}/corpus")
        self.outlets = list(OUTLETS)
        while len(self.outlets) < max(60, count // 40):
            a, b = rng.sample(NAME_PARTS, 2)
            name = f"{a} {b} {rng.choice(['News', 'Today', 'Weekly', 'Online', ''])}".strip()
            domain = (
                f"{a}{b}{len(self.outlets)}.{rng.choice(['com', 'net', 'co.uk', 'io'])}".lower()
            )
            self.outlets.append((name, domain))
        # Zipf-like: a few outlets carry most stories, as microsoft.com does in the real archive.
        self.outlet_weights = [1 / (rank + 1) ** 1.1 for rank in range(len(self.outlets))]
        self.stories = []  # (event, published, outlet, url, title, type) per file, by index
        event = 0
        while len(self.stories) < count:
            size = weighted(rng, EVENT_SIZES)
            when = START + timedelta(days=rng.randrange(DAYS), minutes=rng.randrange(1440))
            headline = self._headline(rng)
            root = weighted(rng, ROOT_WEIGHTS)
            for member in range(min(size, count - len(self.stories))):
                index = len(self.stories)
                outlet = rng.choices(range(len(self.outlets)), self.outlet_weights)[0]
                published = when + timedelta(minutes=rng.randrange(0, 4 * 1440) if member else 0)
                title = self._variant(rng, headline, member, outlet)
                kind = "video" if rng.random() < 0.03 else "article"
                url = self._url(rng, outlet, published, title, index)
                self.stories.append((event, published, outlet, url, title, kind, root))
            event += 1
        self.event_count = event
        self._event_words = {}
        self.event_members = {}
        for index, story in enumerate(self.stories):
            self.event_members.setdefault(story[0], []).append(index)
        # A few files carry another file's URL plus a tracking parameter: one story, two files.
        for index in rng.sample(range(count), count // 200):
            other = rng.randrange(count)
            if other != index and self.stories[other][5] == "article":
                story = list(self.stories[index])
                story[3] = self.stories[other][3] + rng.choice(TRACKING)
                self.stories[index] = tuple(story)

    def _headline(self, rng):
        return (rng.choice(COMPANIES), rng.choice(ACTIONS), rng.choice(OBJECTS), rng.choice(TAILS))

    def _variant(self, rng, headline, member, outlet):
        company, actions, obj, tail = headline
        action = actions[0] if member == 0 else rng.choice(actions)
        title = f"{company} {action} {obj}{tail}"
        title = title[0].upper() + title[1:]
        if member and rng.random() < 0.3:
            title = title.title()
        if rng.random() < 0.15:
            title += f" | {self.outlets[outlet][0]}"
        if rng.random() < 0.05:
            title = f"Report: {title}"
        if rng.random() < 0.01:
            title = title.replace(obj, f"\u00e2\u20ac\u02dc{obj}\u00e2\u20ac\u2122")  # mojibake
        if rng.random() < 0.01:
            title += "\u00a0"
        target = from_deciles(rng, TITLE_DECILES)
        while len(title) < target:
            title += f" {rng.choice(WORDS)}"
        return title

    def _url(self, rng, outlet, published, title, index):
        domain = self.outlets[outlet][1]
        path = f"{rng.choice(SECTIONS)}/{published:%Y/%m/%d}/{slugify(title, 90)}-{index}"
        if rng.random() < 0.02:
            path += "-" + "-".join(rng.choice(WORDS) for _ in range(20))
        url = f"https://www.{domain}/{path[:200]}/"
        if rng.random() < 0.02:
            url = f"https://www.{domain}/?p={100000 + index}"
        return url

    def event_related_only(self, event):
        """Stories known only from related lists, shared by the files of one event."""
        rng = random.Random(f"{self.seed}/event/{event}")
        items = []
        for number in range(rng.choice([0, 1, 2, 3, 5, 8])):
            outlet = rng.choices(range(len(self.outlets)), self.outlet_weights)[0]
            domain = self.outlets[outlet][1]
            title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize()
            items.append(
                {
                    "title": title,
                    "webUrl": f"https://{domain}/related/{event}-{number}/{slugify(title, 60)}",
                    "outlet": outlet,
                    "event": event,
                }
            )
        return items

    def path(self, index):
        _event, published, _outlet, _url, title, _kind, _root = self.stories[index]
        return (
            f"news/{index // FILES_PER_FOLDER:03d}/"
            f"{published:%Y-%m-%d}-{slugify(title)}-{index:06d}.md"
        )

    def changed_indices(self, revision, fraction):
        if revision <= 0 or fraction <= 0:
            return set()
        rng = random.Random(f"{self.seed}/revision/{revision}")
        return set(rng.sample(range(self.count), round(self.count * fraction)))

    # Files -----------------------------------------------------------------

    def topic_files(self):
        for number, (root, children) in enumerate(TOPIC_TREE.items()):
            lines = [
                "taxonomy: topic",
                f"_id: {slugify(root)}",
                f"name: {root}",
                "keywords:",
                f"  - {root.lower()}",
                "hashtags:",
                f'  - "#{root.replace(" ", "")}"',
            ]
            yield f"topics/{number:02d}-{slugify(root)}.yaml", "\n".join(lines)
            for child_number, (child, shortname) in enumerate(children, 1):
                lines = ["taxonomy: topic", f"_id: {slugify(child)}", f"name: {child}"]
                if shortname:
                    lines.append(f"shortname: {shortname}")
                lines += [f"parent: {root}", "keywords:", f"  - {child.lower()}"]
                yield (
                    f"topics/{number:02d}-{child_number:02d}-{slugify(child)}.yaml",
                    "\n".join(lines),
                )

    def organization_files(self):
        rng = random.Random(f"{self.seed}/organizations")
        for name, domain in self.outlets:
            if rng.random() > 0.15:
                continue  # most outlets have no organization file, as in the real archive
            description = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))
            yield (
                f"organizations/{domain}.md",
                "\n".join(
                    [
                        "---",
                        "taxonomy: organization",
                        f"_id: {domain}",
                        f"name: {quote(name)}",
                        f"domain: {domain}",
                        f"description: {quote(description.capitalize() + '.')}",
                        "images:",
                        f"  - url: /assets/images/organizations/{domain}-50x50.jpg",
                        "    width: 50",
                        "    height: 50",
                        "---",
                        "",
                    ]
                ),
            )

    def news_file(self, index, revision=0, changed=frozenset()):
        rng = random.Random(f"{self.seed}/file/{index}")
        event, published, outlet, url, title, kind, root = self.stories[index]
        item = self._news_item(rng, index, event, published, outlet, url, title, kind, root)
        if index in changed:
            self._crawl_again(random.Random(f"{self.seed}/file/{index}/{revision}"), item, index)
        text = self._render(item)
        if item["crlf"]:
            text = text.replace("\n", "\r\n")
        return text

    def event_words(self, event):
        """Words the coverage of one event shares beyond its headline (names, places, figures)."""
        # Asked for by every file of the event and every item listing it: drawn once.
        words = self._event_words.get(event)
        if words is None:
            rng = random.Random(f"{self.seed}/event-words/{event}")
            words = self._event_words[event] = rng.sample(VOCABULARY, 5)
        return words

    def _excerpt(self, rng, event):
        roll = rng.random()
        if roll < 0.01:
            return rng.choice(PLACEHOLDERS)
        target = from_deciles(rng, EXCERPT_DECILES)
        words = rng.sample(self.event_words(event), rng.randint(1, 3))
        while sum(len(w) + 1 for w in words) < target:
            if rng.random() < TAIL_SHARE:
                words.append(rng.choices(VOCABULARY, cum_weights=VOCABULARY_WEIGHTS)[0])
            else:
                words.append(rng.choice(WORDS))
        rng.shuffle(words)
        text = " ".join(words).capitalize()
        if roll < 0.17:
            spot = rng.randrange(len(words))
            words[spot] += rng.choice(ENTITIES)
            text = " ".join(words).capitalize()
        if rng.random() < 0.07:
            text = text.replace(" ", "\u00a0", 1)
        if rng.random() < 0.06:
            text = text.replace(" ", rng.choice(["\n", "\r\n", "  "]), 1)
        if rng.random() < 0.08:
            text += "…"
        return text

    def _images(self, rng, width_choices=((1024, 683), (1280, 720), (1600, 1600), (960, 1200))):
        images = []
        for _ in range(1 if rng.random() < 0.93 else 0):
            width, height = rng.choice(width_choices)
            image = {
                "url": f"https://cdn.example-images.com/{rng.getrandbits(48):012x}.jpg",
                "width": width,
                "height": height,
            }
            if rng.random() < 0.02:
                image["url"] += "?resize=620%2C497&#038;ssl=1"
            if rng.random() < 0.9:
                image["isCached"] = True
            if rng.random() < 0.2:
                image["title"] = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))
            images.append(image)
        return images

    def _news_item(self, rng, index, event, published, outlet, url, title, kind, root):
        name, domain = self.outlets[outlet]
        quality = from_deciles(rng, QUALITY_DECILES)
        is_published = quality >= 70
        heat = quality if rng.random() < 0.96 else quality + rng.randint(-6, 6)
        if not is_published and rng.random() < 0.3:
            heat = -1  # the seeds' unpublished files
        item = {
            "crlf": rng.random() < 0.066,
            "title": title,
            "excerpt": self._excerpt(rng, event),
            "publishedDateTime": published,
            "type": kind,
            "scores": None if rng.random() < 0.01 else (quality, heat, is_published),
            "provider": (name, domain, rng.random() < 0.85),
            "images": self._images(rng),
            "secured": secured_blob(rng),
        }
        if kind == "video":
            video = f"{rng.getrandbits(60):011x}"
            item["originalUrl"] = f"https://youtube.com/watch?v={video}"
            item["featuredContent"] = (
                f'<iframe width="800" height="500" frameborder="0" '
                f'src="https://www.youtube.com/embed/{video}" allowfullscreen></iframe>'
            )
        else:
            if rng.random() < 0.75:
                item["originalUrl"] = url
            item["webUrl"] = url
            if rng.random() < 0.45:
                host_path = url.split("://", 1)[1]
                item["ampWebUrl"] = url.rstrip("/") + "/amp/"
                item["cdnAmpWebUrl"] = (
                    f"https://{domain.replace('.', '-')}.cdn.ampproject.org/c/s/{host_path}amp/"
                )
        children = TOPIC_TREE[root]
        count = weighted(rng, [(0, 40), (1, 45), (2, 15)])
        item["topics"] = [root] + [c for c, _ in rng.sample(children, count)]
        item["related"] = self._related(rng, index, event)
        return item

    def _related(self, rng, index, event):
        low, high = weighted(rng, RELATED_LENGTHS)
        length = rng.randint(low, high)
        if not length:
            return []
        pool = [("file", other) for other in self.event_members[event] if other != index]
        pool += [("only", item) for item in self.event_related_only(event)]
        rng.shuffle(pool)
        picks = pool[: max(1, length // 2)]
        while len(picks) < length:
            # Noise, as real lists carry: other files and other events' related-only stories.
            if rng.random() < 0.5:
                picks.append(("file", rng.randrange(self.count)))
            else:
                others = self.event_related_only(rng.randrange(self.event_count))
                if others:
                    picks.append(("only", rng.choice(others)))
        if rng.random() < 0.03:
            picks.append(rng.choice(picks))  # the same URL twice in one list
        if rng.random() < 0.01:
            picks.append(("file", index))  # a file listing itself
        return [self._related_item(rng, kind, target) for kind, target in picks[:60]]

    def _related_item(self, rng, kind, target):
        if kind == "file":
            event, published, outlet, url, title, story_type, _r = self.stories[target]
            published += timedelta(minutes=rng.choice([0, 0, 0, 40]))
        else:
            outlet, url, title = target["outlet"], target["webUrl"], target["title"]
            event = target["event"]
            published, story_type = START + timedelta(minutes=rng.randrange(DAYS * 1440)), "article"
        name, domain = self.outlets[outlet]
        if story_type == "video":
            url = f"https://youtube.com/watch?v={target:011d}"
        item = {
            "title": title if rng.random() < 0.8 else title.lower(),
            "excerpt": self._excerpt(rng, event),
            "publishedDateTime": published,
            "webUrl": url,
            "type": "article",
            "provider": (name, domain, False),
            "quality": rng.randint(0, 139),
            "images": self._images(rng) if rng.random() < 0.85 else [],
        }
        if rng.random() < 0.6:
            item["ampWebUrl"] = url.rstrip("/") + "/amp/"
        return item

    def _crawl_again(self, rng, item, index):
        """What a later crawl changes: mostly heat and ``secured``, sometimes more."""
        item["secured"] = secured_blob(rng)
        if item["scores"]:
            quality, heat, is_published = item["scores"]
            item["scores"] = (quality, heat + rng.randint(-6, 6), is_published)
        if rng.random() < 0.1:
            item["title"] = item["title"].rstrip() + " (updated)"
        if rng.random() < 0.1:
            item["excerpt"] = self._excerpt(rng, self.stories[index][0])
        if rng.random() < 0.2 and item["related"]:
            item["related"].pop(rng.randrange(len(item["related"])))
        if rng.random() < 0.2:
            item["related"].append(self._related_item(rng, "file", rng.randrange(self.count)))
        if rng.random() < 0.03 and "webUrl" in item:
            # A syndicated copy of the same press release at another outlet.
            outlet = rng.randrange(len(self.outlets))
            item["provider"] = (*self.outlets[outlet], False)
            item["webUrl"] = item["originalUrl"] = (
                f"https://www.{self.outlets[outlet][1]}/syndicated/{index}/"
            )
            item.pop("ampWebUrl", None)
            item.pop("cdnAmpWebUrl", None)

    def _render(self, item):
        lines = [
            "---",
            "category: news",
            f"title: {quote(item['title'])}",
            f"excerpt: {quote(item['excerpt'])}",
            f"publishedDateTime: {item['publishedDateTime']:%Y-%m-%dT%H:%M:%SZ}",
        ]
        for key in ("originalUrl", "webUrl", "ampWebUrl", "cdnAmpWebUrl"):
            if key in item:
                lines.append(f"{key}: {quote(item[key])}")
        lines.append(f"type: {item['type']}")
        if item["scores"]:
            quality, heat, is_published = item["scores"]
            lines += [
                f"quality: {quality}",
                f"heat: {heat}",
                f"published: {'true' if is_published else 'false'}",
            ]
        lines.append("")
        if "featuredContent" in item:
            lines += [f"featuredContent: {quote(item['featuredContent'])}", ""]
        lines += self._provider(item["provider"], indent="")
        lines += ["", "topics:"] + [f"  - {topic}" for topic in item["topics"]]
        if item["images"]:
            lines += ["", "images:"] + self._image_lines(item["images"], "  ")
        if item["related"]:
            lines += ["", "related:"]
            for related in item["related"]:
                lines.append(f"  - title: {quote(related['title'])}")
                lines.append(f"    excerpt: {quote(related['excerpt'])}")
                lines.append(
                    f"    publishedDateTime: {related['publishedDateTime']:%Y-%m-%dT%H:%M:%SZ}"
                )
                lines.append(f"    webUrl: {quote(related['webUrl'])}")
                if "ampWebUrl" in related:
                    lines.append(f"    ampWebUrl: {quote(related['ampWebUrl'])}")
                lines.append(f"    type: {related['type']}")
                lines += self._provider(related["provider"], indent="    ")
                lines.append(f"    quality: {related['quality']}")
                if related["images"]:
                    lines += ["    images:"] + self._image_lines(related["images"], "      ")
        lines += ["", f"secured: {quote(item['secured'])}", "---", ""]
        return "\n".join(lines)

    @staticmethod
    def _provider(provider, indent):
        name, domain, with_logo = provider
        lines = [
            f"{indent}provider:",
            f"{indent}  name: {quote(name)}",
            f"{indent}  domain: {domain}",
        ]
        if with_logo:
            lines += [
                f"{indent}  images:",
                f'{indent}    - url: "https://example-cdn.github.io/assets/images/organizations/'
                f'{domain}-50x50.jpg"',
                f"{indent}      width: 50",
                f"{indent}      height: 50",
            ]
        return lines

    @staticmethod
    def _image_lines(images, indent):
        lines = []
        for image in images:
            lines.append(f"{indent}- url: {quote(image['url'])}")
            lines.append(f"{indent}  width: {image['width']}")
            lines.append(f"{indent}  height: {image['height']}")
            if "isCached" in image:
                lines.append(f"{indent}  isCached: true")
            if "title" in image:
                lines.append(f"{indent}  title: {quote(image['title'])}")
        return lines

    def files(self, revision=0, fraction=0.0):
        """Every (relative path, text) of the corpus at a revision."""
        yield from self.topic_files()
        yield from self.organization_files()
        changed = self.changed_indices(revision, fraction)
        for index in range(self.count):
            yield self.path(index), self.news_file(index, revision, changed)


def write_corpus(out, count, seed, revision=0, fraction=0.0):
    """Write the corpus under ``out``; only files whose bytes differ are written.

    Returns (files, written).
    """
    out = Path(out)
    files = written = 0
    for relative, text in Corpus(count, seed).files(revision, fraction):
        data = text.encode("utf-8")
        path = out / relative
        files += 1
        if path.exists() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written += 1
    return files, written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write (created when missing)")
    parser.add_argument("--count", type=int, required=True, help="number of news files")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--revision", type=int, default=0, help="a later crawl of the same corpus")
    parser.add_argument(
        "--changed",
        type=float,
        default=0.1,
        help="fraction of news files a revision changes (default 0.1)",
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    if not 0 <= args.changed <= 1:
        parser.error("--changed must be between 0 and 1")
    files, written = write_corpus(args.out, args.count, args.seed, args.revision, args.changed)
    print(f"{args.out}: {files} files, {written} written", file=sys.stderr)


if __name__ == "__main__":
    main()
