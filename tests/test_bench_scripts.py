"""The benchmark scripts: their parsing and verdicts, and a tiny end-to-end run of each."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import run_measured, table
from bench.ingest import targets as ingest_targets
from bench.serve import parse_wrk
from bench.serve import targets as serve_targets

REPO = Path(__file__).resolve().parent.parent

WRK_OK = """Running 1s test @ http://127.0.0.1:8342/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.11ms    2.01ms   9.91ms   83.64%
    Req/Sec     1.07k   352.86     1.49k    60.00%
  Latency Distribution
     50%  950.00us
     75%    2.79ms
     90%    5.19ms
     99%    1.20s
  1069 requests in 1.00s, 1.30MB read
Requests/sec:   1068.08
Transfer/sec:      1.30MB
"""
WRK_ERRORS = """  Latency Distribution
     50%    1.10ms
     99%    8.41ms
  494 requests in 1.00s, 250.86KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 494
Requests/sec:    493.30
"""


def test_parse_wrk_reads_rate_latency_in_ms_and_errors():
    assert parse_wrk(WRK_OK) == pytest.approx(
        {
            "rps": 1068.08,
            "p50_ms": 0.95,
            "p99_ms": 1200.0,
            "requests": 1069,
            "errors": 0,
        }
    )
    figures = parse_wrk(WRK_ERRORS)
    assert figures["errors"] == 494 + 3
    assert figures["p99_ms"] == 8.41


def test_parse_wrk_refuses_output_without_a_rate():
    with pytest.raises(RuntimeError, match="no rate"):
        parse_wrk("unable to connect to 127.0.0.1:8300 Connection refused")


@pytest.fixture
def local_server():
    """A static file server on a free loopback port: something to drive."""
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(REPO / "seeds")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def drive_with_python(url):
    result = subprocess.run(
        [
            sys.executable,
            "bench/serve.py",
            "--step",
            "drive",
            "--duration",
            "1",
            "--connections",
            "2",
            "--url",
            url,
            "--header",
            "If-None-Match: x",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_python_load_generator_counts_requests_and_errors(local_server):
    ok = drive_with_python(local_server + "/")
    assert ok["requests"] > 0 and ok["errors"] == 0
    assert ok["rps"] > 0 and 0 < ok["p50_ms"] <= ok["p99_ms"]
    missing = drive_with_python(local_server + "/no-such-file")
    assert missing["requests"] > 0 and missing["errors"] == missing["requests"]


def ingest_result(count, fresh, unchanged, rss, failed=0):
    step = {"seconds": 1.0, "ratio_to_parse": 1.0, "rss_mb": rss, "summary": {"failed": failed}}
    return {
        "count": count,
        "steps": {
            "parse": {"seconds": 1.0, "ratio_to_parse": 1.0, "rss_mb": 20},
            "fresh": {**step, "ratio_to_parse": fresh},
            "unchanged": {**step, "ratio_to_parse": unchanged},
            "changed": dict(step),
        },
    }


def test_ingest_targets_flag_what_is_missed():
    checks = ingest_targets(
        [ingest_result(1000, 1.4, 0.2, 100), ingest_result(10000, 1.6, 0.31, 130, failed=2)]
    )
    verdicts = {check["target"]: check["verdict"] for check in checks}
    assert verdicts["N=1000: fresh load <= 1.5 x parse"] == "ok"
    assert verdicts["N=10000: fresh load <= 1.5 x parse"] == "MISSED"
    assert verdicts["N=10000: unchanged re-load <= 0.3 x parse"] == "MISSED"
    assert verdicts["N=10000: 0 failed files"] == "MISSED"
    assert verdicts["fresh memory N=10000 <= 1.2 x N=1000"] == "MISSED"  # 130 / 100


def serve_result(count, cached_topic, uncached_topic, not_modified, p99, errors=0):
    def page(ratio, p99_ms=p99):
        return {"ratio_to_trivial": ratio, "p99_ms": p99_ms, "errors": errors}

    return {
        "count": count,
        "modes": {
            "cached": {
                "pages": {"topic": page(cached_topic), "feed_304": page(not_modified)},
                "problems": [],
            },
            "uncached": {"pages": {"topic": page(uncached_topic)}, "problems": []},
        },
    }


def test_serve_targets_flag_what_is_missed():
    checks = serve_targets(
        [serve_result(1000, 0.9, 0.5, 0.95, 10), serve_result(100000, 0.6, 0.1, 0.5, 20, 1)]
    )
    verdicts = {check["target"]: check["verdict"] for check in checks}
    assert verdicts["N=1000: cached topic page >= 70% of trivial"] == "ok"
    assert verdicts["N=1000: 0 errors"] == "ok"
    assert verdicts["N=100000: cached topic page >= 70% of trivial"] == "MISSED"
    assert verdicts["N=100000: uncached topic page >= 20% of trivial"] == "MISSED"
    assert verdicts["N=100000: 304 feed path >= 80% of trivial"] == "MISSED"
    assert verdicts["N=100000: 0 errors"] == "MISSED"
    assert verdicts["uncached topic p99 at N=100000 <= 1.5 x N=1000"] == "MISSED"


def test_a_step_reports_its_own_peak_memory_not_its_parents():
    """Linux carries ru_maxrss across exec: wait4 alone would report this process's size."""
    ballast = bytearray(200 * 2**20)
    for offset in range(0, len(ballast), 4096):
        ballast[offset] = 1
    script = (
        "import json; from bench.common import peak_rss_mb; "
        "print(json.dumps({'peak_rss_mb': peak_rss_mb()}))"
    )
    figures, rss = run_measured([sys.executable, "-c", script])
    assert figures == {}
    assert 0 < rss < 100, rss
    del ballast


def test_table_aligns_columns():
    lines = table(["page", "req/s"], [["home", 1234.5], ["trivial", 9.25]]).splitlines()
    assert lines[0].startswith("page     req/s")
    assert lines[2].endswith("1234.5") and lines[3].endswith(" 9.250")
    assert len({len(line) for line in lines}) == 1


def run_script(script, tmp_path, *args):
    env = dict(os.environ, BENCH_OUT=str(tmp_path))
    result = subprocess.run(
        [sys.executable, script, "--json", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_ingest_json_summarises_every_step(tmp_path):
    report = run_script("bench/ingest.py", tmp_path, "--sizes", "30", "--repeat", "1")
    assert report["benchmark"] == "ingest"
    (result,) = report["results"]
    steps = result["steps"]
    assert steps["parse"]["seconds"] > 0
    assert steps["fresh"]["summary"]["failed"] == 0
    assert steps["fresh"]["summary"]["created"] >= 30
    # Loading the same files twice changes nothing; a 10% revision touches 3 news files.
    assert steps["unchanged"]["summary"]["created"] == 0
    assert steps["unchanged"]["summary"]["updated"] == 0
    assert steps["changed"]["summary"]["updated"] >= 3
    assert all(steps[s]["rss_mb"] > 0 for s in steps)


@pytest.mark.slow
def test_serve_json_measures_every_page(tmp_path):
    report = run_script(
        "bench/serve.py",
        tmp_path,
        "--sizes",
        "30",
        "--repeat",
        "1",
        "--duration",
        "1",
        "--port",
        "8320",
    )
    (result,) = report["results"]
    assert report["benchmark"] == "serve"
    for mode in ("cached", "uncached", "cold"):
        pages = result["modes"][mode]["pages"]
        assert set(pages) >= {"trivial", "home", "topic", "topic_deep", "cluster"}
        assert pages["trivial"]["errors"] == 0
        assert pages["trivial"]["ratio_to_trivial"] == 1
        assert all(figures["requests"] > 0 for figures in pages.values())
    # A page that fails is reported, never hidden: errors count into a target.
    assert {check["target"].split(" (")[0] for check in report["targets"]} >= {"N=30: 0 errors"}
