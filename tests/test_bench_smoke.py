"""Every benchmark still runs: each one in its tiny `--smoke` mode, as a subprocess, must
exit 0 and print its figures. The figures themselves are not judged here (no timing
thresholds in tests); the point is that no benchmark can rot unnoticed.

To add a benchmark, append (id, command, texts its output must contain) to BENCHMARKS.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_engine

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

BENCHMARKS: list[tuple[str, list[str], list[str]]] = [
    (
        "catalog",
        [PY, "bench/catalog_bench.py", "--smoke"],
        [
            '"patents_per_s"',
            '"copy_ceiling_rows_per_s"',
            '"search_p99_ms"',
            '"pool_bulk_per_s"',
            '"pool_one_by_one_per_s"',
        ],
    ),
    (
        "bulk-profile",
        [PY, "bench/bulk_profile.py", "--smoke"],
        ["| validate + prepare |", "| PostgreSQL backend (same upload) |", "by tottime"],
    ),
    (
        "keyword-search",
        [PY, "bench/search_bench.py", "--smoke"],
        ["| 1 char, absent |", "| 2 chars, rare (in 1 patent) |", "bulk upload, patents/s"],
    ),
    (
        "indicators",
        [PY, "-m", "bench.indicators.bench", "--smoke"],
        ["| whole city plan (19 indicators), plan_progress |", "| ledger export, CSV"],
    ),
    (
        "loop-stall",
        [PY, "bench/loop_stall.py", "--smoke"],
        ["worst loop stall during a 50-record synchronous upload"],
    ),
    (
        "industry-tagging",
        [PY, "bench/industry_tagging.py", "--smoke"],
        ["tagged share, demo pool", "| 2 高端装备制造产业 |", "| all |"],
    ),
    (
        "portal",
        [PY, "bench/portal_bench.py", "--setup", "200", "--smoke"],
        ["search page ", "problem-to-patents ", "bureau dashboard ", "search page weight"],
    ),
    (
        "observability-overhead",
        [PY, "bench/observability_overhead.py", "--smoke"],
        ['"us_per_request"', '"metrics_cost_us"', '"limits_cost_us"'],
    ),
    (
        "replica-writes",
        [PY, "bench/replica_bench.py", "--smoke"],
        ["| matching | 1,000 |", "| indicators | 1 |", "statements / entry"],
    ),
    (
        "keyword-upkeep",
        [PY, "bench/keyword_upkeep.py", "--smoke"],
        [
            "| before: rebuild every 2,000 changes |",
            "| now: seal every 256, merge",
            "seals / merges",
        ],
    ),
    (
        "sync-upload",
        [PY, "bench/sync_upload.py", "--smoke"],
        ["| a new loop, engine and connection each |", "| one long-lived upload loop |"],
    ),
    (
        "load-mix",
        [PY, "bench/load_mix.py", "--smoke"],
        [
            "| POST /v1/deals |",
            "| GET /v1/plans/city-001/progress |",
            "| catalog | `GET /v1/feed` |",  # the services' calls to each other, from /metrics
            "verification passed",
        ],
    ),
]


@pytest.mark.parametrize(
    ("command", "expected"), [(c, e) for _, c, e in BENCHMARKS], ids=[i for i, _, _ in BENCHMARKS]
)
def test_benchmark_smoke(command: list[str], expected: list[str]) -> None:
    require_engine("postgresql")  # the benchmarks measure PostgreSQL
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for text in expected:
        assert text in result.stdout, f"{text!r} missing from:\n{result.stdout[-3000:]}"


# The matching benchmarks read the real evaluation data beside the repository
# (../shared/data, never needed by the product): CI has it; elsewhere they are skipped.
MATCHING_BENCHMARKS: list[tuple[str, list[str], list[str]]] = [
    (
        "matching-evaluate",
        [PY, "-m", "bench.matching.evaluate", "--smoke"],
        ["| matcher |", "| char-ngram-tfidf |", "Paired nDCG@10 difference"],
    ),
    (
        "matching-calibrate",
        [PY, "-m", "bench.matching.calibrate", "--smoke"],
        ["shipped: strong from", "| strong |"],
    ),
    (
        "matching-perf",
        [PY, "-m", "bench.matching.perf", "--docs", "2000", "--workers", "1"],
        ['"matcher_p99_ms"', '"bm25_p99_ms"'],
    ),  # fmt: skip
    (
        "matching-profile",
        [PY, "-m", "bench.matching.profile_query", "--docs", "2000", "--rounds", "1"],
        ['"+ explanations (shipped)"'],
    ),
    (
        "matching-http",
        [PY, "-m", "bench.matching.http_bench", "--smoke"],
        ['"http_p99_ms"', '"upload_to_matchable_median_s"'],
    ),  # fmt: skip
    (
        "matching-segments",
        [PY, "-m", "bench.matching.segments", "--smoke"],
        ["| whole tail past 12 (before) |", "(shipped) |"],
    ),
    (
        "matching-http-profile",
        [PY, "-m", "bench.matching.profile_http", "--smoke"],
        ['"server_cpu_ms_per_request"', "| · · index search (search_report) |"],
    ),  # fmt: skip
]


@pytest.mark.parametrize(
    ("command", "expected"),
    [(c, e) for _, c, e in MATCHING_BENCHMARKS],
    ids=[i for i, _, _ in MATCHING_BENCHMARKS],
)
def test_matching_benchmark_smoke(command: list[str], expected: list[str]) -> None:
    from bench.matching.corpus import PATENTS

    if not PATENTS.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the evaluation data {PATENTS} is missing; CI has ../shared/data")
        pytest.skip(f"the evaluation data {PATENTS} is not on this machine")
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for text in expected:
        assert text in result.stdout, f"{text!r} missing from:\n{result.stdout[-3000:]}"
