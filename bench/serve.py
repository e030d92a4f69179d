"""Serving benchmark: gunicorn (2 workers, production settings) over a database of N stories,
driven from a second process (wrk, else a Python generator); each page's rate as a ratio
of a trivial view's.

    python bench/serve.py --sizes 1000,10000,100000 --repeat 3 --duration 5 [--json]

The database is the embedded default (SQLite in bench/out/) or, when ``DATABASE_URL``
is set, PostgreSQL (a database per size, named after it); ``REDIS_URL`` selects the
Redis cache. Each size is served three times: ``cached``, with the anonymous response
cache (as production runs); ``uncached``, without it (``PAGE_CACHE_SECONDS=0``), so
every page runs its view but reuses the rendered list entries
(``ENTRY_CACHE_SECONDS``); and ``cold``, without either, so every request renders
everything, as the first request after a publish does. Pages: the trivial view
(the floor), home, a topic page (first and a deep page), the largest cluster's page,
the topic's feed and that feed again with ``If-None-Match`` (the 304 path); every
request sends ``Accept-Encoding: gzip``, as browsers and feed readers do. Rounds
interleave the pages, ratios are taken within a round, medians over rounds reported.

Targets: cached topic page >= 70% of the trivial view, uncached >= 20%, the 304 feed
path >= 80%; topic page p99 at the largest N within 1.5 x its p99 at the smallest; 0
errors.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    OUT,
    REPO,
    benchmark_parser,
    database_kind,
    database_url,
    django_env,
    finish,
    machine,
    median,
    parse_sizes,
    progress_printer,
    reset_database,
    run_measured,
    table,
    verdict,
)
from bench.make_corpus import write_corpus

PORT = 8300
CACHED_LIMIT = 0.70
UNCACHED_LIMIT = 0.20
NOT_MODIFIED_LIMIT = 0.80
P99_GROWTH_LIMIT = 1.5
PAGES = ("trivial", "home", "topic", "topic_deep", "cluster", "feed", "feed_304")
MODES = ("cached", "uncached", "cold")


# Child side ------------------------------------------------------------------


def discover():
    """The paths to measure in this database (run inside Django)."""
    import django

    django.setup()
    from django.db.models import Count
    from django.urls import get_resolver, reverse

    from articles.models import Cluster, ClusterTopic, SourceFile, Topic

    topic_counts = (
        ClusterTopic.objects.filter(cluster__in=Cluster.objects.public())
        .values("topic")
        .annotate(n=Count("pk"))
        .order_by("-n")
    )
    busiest = topic_counts.first()
    topic = Topic.objects.get(pk=busiest["topic"]) if busiest else Topic.objects.first()
    try:
        from articles.pagination import PER_PAGE
    except ImportError:
        PER_PAGE = 20
    pages = max(1, -(-(busiest["n"] if busiest else 0) // PER_PAGE))
    cluster = Cluster.objects.public().order_by("-story_count", "pk").first()
    topic_path = reverse("articles:topic", kwargs={"slug": topic.slug})
    paths = {
        "trivial": reverse("bench-trivial"),
        "home": reverse("articles:home"),
        "topic": topic_path,
        "topic_deep": f"{topic_path}?page={max(1, pages // 2)}",
        "cluster": cluster.get_absolute_url() if cluster else None,
        "feed": topic_feed_path(get_resolver(), reverse, topic.slug),
    }
    print(
        json.dumps(
            {
                "paths": paths,
                "topic": topic.name,
                "topic_clusters": busiest["n"] if busiest else 0,
                "topic_pages": pages,
                "cluster_stories": cluster.story_count if cluster else 0,
                "files": SourceFile.objects.count(),
            }
        )
    )


def topic_feed_path(resolver, reverse, slug):
    """The topic feed, whatever the feeds app named it: RSS first, else any topic feed."""
    names = sorted(url_names(resolver), key=lambda n: ("rss" not in n, "atom" in n, n))
    for name in names:
        if "feed" in name and "topic" in name and "json" not in name:
            try:
                return reverse(name, kwargs={"slug": slug})
            except Exception:  # noqa: S112 - a name that takes other arguments: try the next
                continue
    return None


def url_names(resolver, namespace=""):
    for pattern in resolver.url_patterns:
        if hasattr(pattern, "url_patterns"):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from url_names(pattern, inner)
        elif pattern.name:
            yield f"{namespace}{pattern.name}"


def count_files():
    """How many files the database holds, or -1 when it is not migrated (run inside Django)."""
    import django

    django.setup()
    from articles.models import SourceFile

    try:
        print(json.dumps({"files": SourceFile.objects.count()}))
    except Exception:
        print(json.dumps({"files": -1}))


# Parent side -------------------------------------------------------------------


def child(step, url):
    env = django_env(url, DJANGO_SETTINGS_MODULE="bench.settings")
    figures, _rss = run_measured([sys.executable, "bench/serve.py", "--step", step], env=env)
    return figures


def ensure_database(count, seed, progress):
    """A database holding the corpus of ``count`` files, loaded once and reused."""
    folder = OUT / f"corpus-{count}-s{seed}"
    write_corpus(folder, count, seed)
    files = sum(1 for p in folder.rglob("*") if p.is_file())
    url = database_url(f"serve-{count}")
    if child("count", url)["files"] != files:
        progress(f"N={count}: loading {files} files into {database_kind(url)}")
        reset_database(url)
        started = time.perf_counter()
        figures, _rss = run_measured(
            [sys.executable, "bench/ingest.py", "--step", "load", str(folder)], env=django_env(url)
        )
        progress(f"N={count}: loaded in {time.perf_counter() - started:.0f}s: {figures}")
    return url


def server_env(url, port, mode):
    return django_env(
        url,
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_DEBUG=0,
        DJANGO_PRODUCTION=1,
        DJANGO_SECRET_KEY="benchmark-only-secret-key-" + "x" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        GUNICORN_WORKERS=2,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_ACCESS_LOG=os.devnull,
        # Worker recycling would land restarts (seconds of no service) inside the short
        # measurement windows; BENCHMARKS.md reports its cost separately.
        GUNICORN_MAX_REQUESTS=0,
        PAGE_CACHE_SECONDS=600 if mode == "cached" else 0,
        ENTRY_CACHE_SECONDS=0 if mode == "cold" else 600,
        # A fresh cache namespace per server: every run starts cold, nothing to flush.
        CACHE_KEY_PREFIX=f"bench-{port}-{time.time_ns()}",
    )


class Server:
    """gunicorn with the repository's gunicorn.conf.py, in its own process group."""

    def __init__(self, env, port, log):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [str(gunicorn), "-c", "gunicorn.conf.py"],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, path, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited {self.process.returncode}; see {self.log.name}"
                )
            try:
                if fetch(self.base + path)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer {path} within {timeout}s; see {self.log.name}")

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def fetch(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


WRK_LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def drive(url, duration, connections, headers=()):
    """Load ``url`` from a second process: wrk when installed, else the Python generator."""
    if not shutil.which("wrk"):
        args = [
            sys.executable,
            "bench/serve.py",
            "--step",
            "drive",
            "--duration",
            str(duration),
            "--connections",
            str(connections),
            "--url",
            url,
        ]
        for header in headers:
            args += ["--header", header]
        result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=True)
        return json.loads(result.stdout.strip().splitlines()[-1])
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    for header in headers:
        args += ["-H", header]
    return parse_wrk(
        subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    )


def python_load(url, duration, connections, headers):
    """A small closed-loop load generator: ``connections`` threads, each one request at a time."""
    import http.client
    import threading
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    extra = dict(header.split(": ", 1) for header in headers)
    latencies, errors, lock = [], [0], threading.Lock()
    deadline = time.perf_counter() + duration

    def worker():
        mine, failed = [], 0
        while (started := time.perf_counter()) < deadline:
            try:
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                connection.request("GET", target, headers=extra)
                response = connection.getresponse()
                response.read()
                connection.close()
                failed += response.status >= 400
            except OSError:
                failed += 1
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    begun = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begun
    latencies.sort()

    def percentile(q):
        return latencies[min(len(latencies) - 1, int(len(latencies) * q))] if latencies else None

    print(
        json.dumps(
            {
                "rps": len(latencies) / elapsed,
                "p50_ms": percentile(0.5),
                "p99_ms": percentile(0.99),
                "requests": len(latencies),
                "errors": errors[0],
            }
        )
    )


def parse_wrk(output):
    """Requests per second, p50 and p99 in ms, and errors (non-2xx/3xx plus socket errors)."""
    latency = {m[0]: float(m[1]) * WRK_UNITS[m[2]] for m in WRK_LATENCY.findall(output)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    requests = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not rate:
        raise RuntimeError(f"wrk printed no rate:\n{output}")
    return {
        "rps": float(rate[1]),
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "requests": int(requests[1]) if requests else 0,
        "errors": (int(bad[1]) if bad else 0) + (sum(map(int, sockets.groups())) if sockets else 0),
    }


def check_pages(base, paths):
    """Each page answers as it should before it is measured; returns (headers, problems)."""
    headers, problems = {}, []
    for page, path in paths.items():
        if page == "feed_304":
            continue
        if path is None:
            problems.append(f"{page}: no URL found")
            continue
        status, response_headers, _body = fetch(base + path)
        if status != 200:
            problems.append(f"{page}: {path} answered {status}")
        headers[page] = response_headers
    etag = headers.get("feed", {}).get("ETag")
    if paths.get("feed") and etag:
        status = fetch(base + paths["feed"], {"If-None-Match": etag})[0]
        if status != 304:
            problems.append(f"feed_304: If-None-Match answered {status}, not 304")
    elif paths.get("feed"):
        problems.append("feed_304: the feed sends no ETag")
    return etag, problems


def bench_mode(url, info, mode, args, port, progress):
    env = server_env(url, port, mode)
    server = Server(env, port, OUT / f"gunicorn-{port}.log")
    try:
        server.wait_ready(info["paths"]["trivial"])
        etag, problems = check_pages(server.base, info["paths"])
        targets = {page: path for page, path in info["paths"].items() if path}
        if etag:
            targets["feed_304"] = info["paths"]["feed"]
        rounds = []
        for round_number in range(args.repeat):
            progress(f"N={info['count']} {mode} round {round_number + 1}/{args.repeat}")
            figures = {}
            for page, path in targets.items():
                # As browsers and feed readers do; the site compresses feeds only.
                headers = ["Accept-Encoding: gzip"]
                if page == "feed_304":
                    headers.append(f"If-None-Match: {etag}")
                figures[page] = drive(server.base + path, args.duration, args.connections, headers)
            rounds.append(figures)
    finally:
        server.stop()
    pages = {}
    for page in PAGES:
        measured = [r[page] for r in rounds if page in r]
        if not measured:
            continue
        pages[page] = {
            "rps": median([m["rps"] for m in measured]),
            "p50_ms": median([m["p50_ms"] for m in measured]),
            "p99_ms": median([m["p99_ms"] for m in measured]),
            "ratio_to_trivial": median(
                [
                    r[page]["rps"] / r["trivial"]["rps"]
                    for r in rounds
                    if page in r and r["trivial"]["rps"]
                ]
            ),
            "errors": sum(m["errors"] for m in measured),
            "requests": sum(m["requests"] for m in measured),
        }
    return {"pages": pages, "problems": problems}


def bench_size(count, args, progress):
    url = ensure_database(count, args.seed, progress)
    info = child("discover", url)
    info["count"] = count
    result = {"count": count, "database": database_kind(url), **info, "modes": {}}
    for offset, mode in enumerate(MODES):
        result["modes"][mode] = bench_mode(url, info, mode, args, args.port + offset, progress)
    return result


def targets(results):
    checks = []

    def check(name, value, limit, higher_is_better=False):
        checks.append(
            {"target": name, "value": value, "verdict": verdict(value, limit, higher_is_better)}
        )

    def ratio(result, mode, page):
        return result["modes"][mode]["pages"].get(page, {}).get("ratio_to_trivial")

    for result in results:
        n = result["count"]
        check(
            f"N={n}: cached topic page >= {CACHED_LIMIT:.0%} of trivial",
            ratio(result, "cached", "topic"),
            CACHED_LIMIT,
            True,
        )
        check(
            f"N={n}: uncached topic page >= {UNCACHED_LIMIT:.0%} of trivial",
            ratio(result, "uncached", "topic"),
            UNCACHED_LIMIT,
            True,
        )
        check(
            f"N={n}: 304 feed path >= {NOT_MODIFIED_LIMIT:.0%} of trivial",
            ratio(result, "cached", "feed_304"),
            NOT_MODIFIED_LIMIT,
            True,
        )
        errors = sum(
            page["errors"] for mode in result["modes"].values() for page in mode["pages"].values()
        )
        problems = [p for mode in result["modes"].values() for p in mode["problems"]]
        check(
            f"N={n}: 0 errors" + (f" ({'; '.join(problems)})" if problems else ""),
            errors + len(problems),
            0,
        )
    if len(results) > 1:
        first, last = results[0], results[-1]
        for mode in MODES:
            if mode not in first["modes"] or mode not in last["modes"]:
                continue
            small = first["modes"][mode]["pages"].get("topic", {}).get("p99_ms")
            large = last["modes"][mode]["pages"].get("topic", {}).get("p99_ms")
            growth = large / small if small and large else None
            check(
                f"{mode} topic p99 at N={last['count']} <= {P99_GROWTH_LIMIT} x N={first['count']}",
                growth,
                P99_GROWTH_LIMIT,
            )
    return checks


def percent(ratio):
    return "-" if ratio is None else f"{ratio:.0%}"


def report(results, checks, info):
    print(
        f"Serving benchmark on {info['cpu']} ({info['cpus']} CPUs), {results[0]['database']}"
        f"{' + Redis' if info['redis'] else ', local-memory cache'}, {info['date']}; gunicorn "
        f"2 workers; {info['driver']}, {info['connections']} connections, {info['duration']}s per "
        f"page, medians of {info['repeat']} rounds"
    )
    rows = []
    for result in results:
        for mode in MODES:
            for page, figures in result["modes"][mode]["pages"].items():
                rows.append(
                    [
                        result["count"],
                        mode,
                        page,
                        round(figures["rps"]),
                        figures["p50_ms"],
                        figures["p99_ms"],
                        percent(figures["ratio_to_trivial"]),
                        figures["errors"],
                    ]
                )
    print(table(["N", "cache", "page", "req/s", "p50 ms", "p99 ms", "vs trivial", "errors"], rows))
    print()
    for result in results:
        print(
            f"N={result['count']}: topic {result['topic']!r} ({result['topic_clusters']} "
            f"clusters, deep page {result['paths']['topic_deep']}), largest cluster "
            f"{result['cluster_stories']} stories; paths {result['paths']}"
        )


def main(argv=None):
    parser = benchmark_parser(__doc__, "rounds")
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per page")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    parser.add_argument(
        "--port", type=int, default=PORT, help="first of three ports (default 8300)"
    )
    parser.add_argument("--step", choices=["discover", "count", "drive"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--header", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step == "drive":
        return python_load(args.url, args.duration, args.connections, args.header)
    if args.step == "discover":
        return discover()
    if args.step == "count":
        return count_files()
    sizes = parse_sizes(parser, args.sizes)
    if min(sizes + [args.repeat, args.duration, args.connections]) < 1:
        parser.error("sizes, --repeat, --duration and --connections must be at least 1")
    progress = progress_printer("serve")

    OUT.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=REPO,
        env=django_env(database_url("static")),
        check=True,
    )
    info = machine()
    info.update(
        redis=bool(os.environ.get("REDIS_URL")),
        driver="wrk 1 thread" if shutil.which("wrk") else "Python load generator",
        repeat=args.repeat,
        duration=args.duration,
        connections=args.connections,
    )
    results = [bench_size(size, args, progress) for size in sizes]
    checks = targets(results)
    report(results, checks, info)
    finish("serve", info, results, checks, args.json)


if __name__ == "__main__":
    main()
