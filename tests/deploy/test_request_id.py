"""JSON logs carry the request id, and one id follows a request from service to service."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import httpx
import pytest

from shared.observability import configure_logging
from tests.deploy.conftest import Live


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("INFO", stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_request_id_is_returned_logged_and_forwarded(live: Live, log_lines: io.StringIO) -> None:
    _, key = live.catalog.org("请求编号科技公司", "sme", "sme", district="dongli", is_sme=True)
    rid = "trace-7f3a-needs"
    with httpx.Client(base_url=live.matching.url, timeout=30) as c:
        # A fresh key: matching has not cached it, so it asks the catalog who it is.
        r = c.get("/v1/needs", headers={"Authorization": f"Bearer {key}", "X-Request-ID": rid})
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == rid
        generated = c.get("/healthz").headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
    logged = records(log_lines)
    access = [x for x in logged if x["logger"] == "tjp.access"]
    mine = [x for x in access if x["request_id"] == rid]
    # Matching's own line, and the catalog's line for the call matching made on its behalf.
    assert {x["route"] for x in mine} >= {"/v1/needs"}, mine
    assert any(x["route"] != "/v1/needs" and x["route"].startswith("/v1/") for x in mine), mine
    line = next(x for x in mine if x["route"] == "/v1/needs")
    assert (line["method"], line["status"], line["level"]) == ("GET", 200, "INFO")
    assert isinstance(line["duration_ms"], float) and "time" in line
    assert any(x["request_id"] == generated and x["route"] == "/healthz" for x in access)


def test_an_overlong_request_id_is_cut(live: Live) -> None:
    r = httpx.get(f"{live.catalog.url}/healthz", headers={"X-Request-ID": "x" * 1000})
    assert r.headers["x-request-id"] == "x" * 128
