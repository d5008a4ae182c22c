"""Property-based fuzzing of the catalog API from its own OpenAPI schema (schemathesis,
run as its CLI against a live server): whatever the input, never a server error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared.testing import fresh_database
from tests.conftest import CatalogHandle, start_catalog
from tests.factories import offer, patent


def test_no_server_errors_under_fuzzing(db_dir: Path) -> None:
    with fresh_database("sqlite", db_dir, "fuzz") as url:
        server, admin = start_catalog(url)
        try:
            handle = CatalogHandle(server.url, url, admin)
            _, key = handle.org("天津模糊测试大学")
            with handle.client(key) as c:
                for _ in range(3):
                    p = patent("天津模糊测试大学")
                    c.post("/v1/patents", json=p)
                    c.post(
                        "/v1/listings",
                        json={"application_number": p["application_number"], **offer()},
                    )
            cli = Path(sys.executable).with_name("schemathesis")
            result = subprocess.run(
                [
                    str(cli),
                    "run",
                    f"{server.url}/openapi.json",
                    "--checks",
                    "not_a_server_error",
                    "--max-examples",
                    "15",
                    "--workers",
                    "1",
                    "--seed",
                    "20261121",
                    "-H",
                    f"Authorization: Bearer {key}",
                ],
                capture_output=True,
                text=True,
                timeout=600,
            )
        finally:
            server.stop()
    assert "generated" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.returncode == 0, result.stdout[-4000:]
