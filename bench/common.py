"""What the benchmark scripts share: child processes with their peak memory, databases, tables."""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
# Generated corpora, databases and logs; BENCH_OUT moves them (the tests use a temporary folder).
OUT = Path(os.environ.get("BENCH_OUT") or REPO / "bench" / "out")


def machine():
    """Where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def peak_rss_mb():
    """This process's peak RSS, or that of a child it waited for if larger (parsing workers).

    Read from ``VmHWM``: Linux carries ``ru_maxrss`` across ``exec``, so the
    figure ``os.wait4`` gives a child starts at its parent's size at the fork,
    a corpus generator's for instance.
    """
    try:
        with open("/proc/self/status") as status:
            own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def run_measured(args, env=None, timeout=None):
    """Run a child that prints one JSON object last; return (that object, its peak RSS in MB).

    The child's own ``peak_rss_mb`` is used when it reports one (see ``peak_rss_mb()``);
    otherwise ``os.wait4`` gives this child's resource usage, not mixed with earlier
    children as ``RUSAGE_CHILDREN`` would be.
    """
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(args, cwd=REPO, env=env, stdout=stdout, stderr=stderr)
        try:
            _pid, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        output = stdout.read().decode("utf-8", "replace")
        errors = stderr.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, args))} exited {process.returncode}:\n{errors[-3000:]}"
        )
    lines = output.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{' '.join(map(str, args))} printed nothing:\n{errors[-3000:]}")
    figures = json.loads(lines[-1])
    return figures, figures.pop("peak_rss_mb", usage.ru_maxrss / 1024)


def database_url(name):
    """A database of this benchmark's own, named after ``name``.

    With ``DATABASE_URL`` set (PostgreSQL), its database name gets ``_<name>``
    appended, so each corpus size keeps its own database; else a SQLite file in bench/out.
    """
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return f"sqlite:///{OUT / (name + '.sqlite3')}"
    parts = urlsplit(url)
    suffix = "".join(c if c.isalnum() else "_" for c in name)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}_{suffix}"))


def database_kind(url):
    return "SQLite" if url.startswith("sqlite") else "PostgreSQL"


def reset_database(url):
    """Start from an empty database, then migrate it (not timed)."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        path = Path(parts.path)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        import psycopg

        name = parts.path.lstrip("/")
        admin = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
        cwd=REPO,
        env=django_env(url),
        check=True,
    )


def django_env(url, **extra):
    """The environment of a child running the site against ``url``, kept out of var/."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        AGGREGATOR_VAR_DIR=str(OUT / "var"),
        DJANGO_SETTINGS_MODULE="aggregator.settings",
        PYTHONPATH=str(REPO),
    )
    env.update({key: str(value) for key, value in extra.items()})
    return env


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def table(headers, rows):
    """A plain-text table with right-aligned numbers."""
    cells = [[format_cell(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append(
            "  ".join(
                c.rjust(w) if is_number(c) else c.ljust(w) for c, w in zip(row, widths, strict=True)
            )
        )
    return "\n".join(lines)


def format_cell(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def is_number(text):
    try:
        float(text.rstrip("x%"))
    except ValueError:
        return False
    return True


def verdict(value, limit, higher_is_better=False):
    if value is None:
        return "n/a"
    ok = value >= limit if higher_is_better else value <= limit
    return "ok" if ok else "MISSED"


def benchmark_parser(doc, per_size):
    """The options every benchmark takes: corpus sizes, repeats, seed, --json."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="1000,10000,100000",
        help="comma-separated corpus sizes (default 1000,10000,100000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help=f"{per_size} per size (default 3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON object on the last line")
    return parser


def parse_sizes(parser, text):
    try:
        return [int(size) for size in text.split(",")]
    except ValueError:
        parser.error(f"--sizes must be numbers separated by commas, not {text!r}")


def progress_printer(name):
    def progress(message):
        print(f"[{name}] {message}", file=sys.stderr, flush=True)

    return progress


def finish(name, info, results, checks, as_json):
    """The targets table, then (with --json) every figure as one JSON object on the last line."""
    print()
    print(
        table(
            ["target", "value", "verdict"],
            [[c["target"], c["value"], c["verdict"]] for c in checks],
        )
    )
    if as_json:
        print(
            json.dumps({"benchmark": name, "machine": info, "results": results, "targets": checks})
        )
