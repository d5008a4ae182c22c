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
        ['"patents_per_s"', '"copy_ceiling_rows_per_s"', '"search_p99_ms"'],
    ),
    (
        "indicators",
        [PY, "-m", "bench.indicators.bench", "--smoke"],
        ["| whole city plan (19 indicators), plan_progress |", "| ledger export, CSV"],
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
