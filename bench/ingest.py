"""Ingest benchmark: a fresh load, an unchanged re-load and a 10%-changed re-load, against
the floor of a pure YAML parse of the same files, with the peak memory of each step.

    python bench/ingest.py --sizes 1000,10000,100000 --repeat 3 [--json]

Every step runs in its own process, so its peak RSS is its own. Each repeat starts
from an empty, migrated database (``DATABASE_URL`` when set, else SQLite in
bench/out/) and the corpus at revision 0; ratios are taken within one repeat and
the medians over repeats are reported.

Targets: fresh load <= 1.5 x parse; unchanged re-load <= 0.3 x parse; peak memory
flat in N (the largest N within 1.2 x the memory of the one before it).
"""

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import yaml

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    OUT,
    benchmark_parser,
    database_url,
    django_env,
    finish,
    machine,
    median,
    parse_sizes,
    peak_rss_mb,
    progress_printer,
    reset_database,
    run_measured,
    table,
    verdict,
)
from bench.make_corpus import write_corpus

FRESH_LIMIT = 1.5
UNCHANGED_LIMIT = 0.3
MEMORY_LIMIT = 1.2
CHANGED_FRACTION = 0.1
STEPS = ("parse", "fresh", "unchanged", "changed")
CORPUS_SUFFIXES = {".md", ".txt", ".yaml", ".yml"}


def parse_floor(folder):
    """Read and YAML-parse every file as fast as this Python can: nothing loads faster."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    files = 0
    for path in corpus_files(folder):
        text = path.read_bytes().decode("utf-8").replace("\r\n", "\n")
        if text.startswith("---\n"):
            text = text[4:].split("\n---\n", 1)[0]
        yaml.load(text, Loader=loader)
        files += 1
    return {"files": files}


def corpus_files(folder):
    """Every corpus file, one folder at a time: memory stays flat however many there are."""
    for root, folders, names in os.walk(folder):
        folders.sort()
        for name in sorted(names):
            if Path(name).suffix in CORPUS_SUFFIXES:
                yield Path(root, name)


def load(folder):
    """One ``load_seeds`` run through the management command, as an operator runs it.

    Returns the timed seconds with the summary: the command's module is imported
    first, so the time is the load's, not Python's imports.
    """
    from io import StringIO

    import django

    django.setup()
    from django.core.management import CommandError, call_command, load_command_class

    load_command_class("articles", "load_seeds")
    out = StringIO()
    started = time.perf_counter()
    # Some files failing is a result, not an error: the summary on stdout names them.
    with contextlib.suppress(CommandError):
        call_command("load_seeds", str(folder), json=True, stdout=out, stderr=StringIO())
    seconds = time.perf_counter() - started
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    figures = {key: summary.get(key) for key in ("files", "created", "updated", "unchanged")}
    figures["failed"] = summary.get("failed")
    figures["errors"] = summary.get("errors", [])[:5]
    figures["seconds"] = seconds
    return figures


def run_step(step, folder):
    """Child side: time one step and print its figures as JSON."""
    if step == "load":
        figures = load(folder)
    else:
        started = time.perf_counter()
        figures = parse_floor(folder)
        figures["seconds"] = time.perf_counter() - started
    figures["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(figures))


def measure(step, folder, url):
    mode = "parse" if step == "parse" else "load"
    figures, rss = run_measured(
        [sys.executable, "bench/ingest.py", "--step", mode, str(folder)], env=django_env(url)
    )
    figures["rss_mb"] = rss
    return figures


def bench_size(count, seed, repeat, progress):
    folder = OUT / f"corpus-{count}-s{seed}"
    url = database_url(f"ingest-{count}")
    runs = []
    for round_number in range(repeat):
        progress(f"N={count} round {round_number + 1}/{repeat}: corpus")
        write_corpus(folder, count, seed)
        reset_database(url)
        run = {}
        for step in STEPS:
            if step == "changed":
                write_corpus(
                    folder, count, seed, revision=round_number + 1, fraction=CHANGED_FRACTION
                )
            progress(f"N={count} round {round_number + 1}/{repeat}: {step}")
            run[step] = measure(step, folder, url)
        runs.append(run)
    write_corpus(folder, count, seed)  # leave revision 0 for the next run
    return summarise(count, runs)


def summarise(count, runs):
    result = {"count": count, "runs": len(runs), "steps": {}}
    for step in STEPS:
        result["steps"][step] = {
            "seconds": median([run[step]["seconds"] for run in runs]),
            "ratio_to_parse": median(
                [run[step]["seconds"] / run["parse"]["seconds"] for run in runs]
            ),
            "rss_mb": median([run[step]["rss_mb"] for run in runs]),
            "files_per_second": median(
                [(run["parse"]["files"]) / run[step]["seconds"] for run in runs]
            ),
        }
        if step != "parse":
            last = runs[-1][step]
            result["steps"][step]["summary"] = {
                key: last.get(key)
                for key in ("files", "created", "updated", "unchanged", "failed", "errors")
            }
    return result


def targets(results):
    checks = []
    for result in results:
        steps = result["steps"]
        checks.append(
            {
                "target": f"N={result['count']}: fresh load <= {FRESH_LIMIT} x parse",
                "value": steps["fresh"]["ratio_to_parse"],
                "verdict": verdict(steps["fresh"]["ratio_to_parse"], FRESH_LIMIT),
            }
        )
        checks.append(
            {
                "target": f"N={result['count']}: unchanged re-load <= {UNCHANGED_LIMIT} x parse",
                "value": steps["unchanged"]["ratio_to_parse"],
                "verdict": verdict(steps["unchanged"]["ratio_to_parse"], UNCHANGED_LIMIT),
            }
        )
        failed = sum((steps[s]["summary"]["failed"] or 0) for s in STEPS if s != "parse")
        checks.append(
            {
                "target": f"N={result['count']}: 0 failed files",
                "value": failed,
                "verdict": verdict(failed, 0),
            }
        )
    for smaller, larger in zip(results, results[1:], strict=False):
        for step in ("fresh", "unchanged", "changed"):
            ratio = larger["steps"][step]["rss_mb"] / smaller["steps"][step]["rss_mb"]
            checks.append(
                {
                    "target": f"{step} memory N={larger['count']} <= {MEMORY_LIMIT} x "
                    f"N={smaller['count']}",
                    "value": ratio,
                    "verdict": verdict(ratio, MEMORY_LIMIT),
                }
            )
    return checks


def report(results, checks, info):
    rows = []
    for result in results:
        for step in STEPS:
            figures = result["steps"][step]
            summary = figures.get("summary") or {}
            rows.append(
                [
                    result["count"],
                    step,
                    figures["seconds"],
                    f"{figures['ratio_to_parse']:.2f}x",
                    round(figures["files_per_second"]),
                    round(figures["rss_mb"], 1),
                    " ".join(
                        f"{k}={summary[k]}"
                        for k in ("created", "updated", "unchanged", "failed")
                        if k in summary
                    ),
                ]
            )
    print(
        f"Ingest benchmark on {info['cpu']} ({info['cpus']} CPUs), {info['database']}, "
        f"{info['date']}; medians of {results[0]['runs']} runs"
    )
    print(table(["N", "step", "seconds", "vs parse", "files/s", "peak MB", "load summary"], rows))


def main(argv=None):
    parser = benchmark_parser(__doc__, "runs")
    parser.add_argument("--step", choices=["parse", "load"], help=argparse.SUPPRESS)
    parser.add_argument("folder", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        return run_step(args.step, args.folder)
    sizes = parse_sizes(parser, args.sizes)
    if args.repeat < 1 or any(size < 1 for size in sizes):
        parser.error("--repeat and every size must be at least 1")
    progress = progress_printer("ingest")

    info = machine()
    info["database"] = database_url("ingest-N").split(":", 1)[0]
    results = [bench_size(size, args.seed, args.repeat, progress) for size in sizes]
    checks = targets(results)
    report(results, checks, info)
    finish("ingest", info, results, checks, args.json)


if __name__ == "__main__":
    main()
