"""Issue 9, defects 5, 6 and 8 on the catalog: oversized bodies, zip bombs, NUL bytes."""

from __future__ import annotations

import functools
from pathlib import Path

from tests.conftest import CatalogHandle
from tests.factories import patent
from tests.hostile import chunked, raw_exchange, xlsx_with_dimension, zip_bomb_xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def head(path: str, host: str, extra: str) -> str:
    return f"POST {path} HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json\r\n{extra}\r\n"


def test_a_declared_oversized_json_body_is_refused_before_authentication(
    catalog: CatalogHandle,
) -> None:
    # 200 MB announced, 64 KB sent: the answer must not wait for the rest.
    status, body = raw_exchange(
        catalog.url,
        head("/v1/organisations", "x", "content-length: 209715200\r\n"),
        [b"{" + b" " * 65535],
    )
    assert status == 413, body
    assert body["status"] == 413 and "1,048,576" in body["detail"]


def test_a_chunked_json_body_is_cut_off_at_the_limit(catalog: CatalogHandle) -> None:
    # 3 MB sent in chunks and never finished: refused once it passes 1 MB, not after.
    status, body = raw_exchange(
        catalog.url,
        head("/v1/organisations", "x", "transfer-encoding: chunked\r\n"),
        chunked(b" " * 65536, 48),
    )
    assert status == 413, body


def test_an_upload_over_its_own_limit_is_refused_unauthenticated(catalog: CatalogHandle) -> None:
    status, _ = raw_exchange(
        catalog.url,
        head("/v1/patents/bulk", "x", f"content-length: {100 * 1024 * 1024 + 1}\r\n"),
        [b"["],
    )
    assert status == 413
    # The upload route's limit is its own: 2 MB of JSON is not refused for size (401: no key).
    with catalog.client() as c:
        r = c.post("/v1/patents/bulk", content=b"[" + b" " * 2_000_000 + b"]",
                   headers={"content-type": "application/json"})  # fmt: skip
        assert r.status_code == 401


def test_a_body_within_the_limit_still_works(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津体积测试大学")
    with catalog.client(key) as c:
        r = c.post("/v1/patents", json=patent("天津体积测试大学"))
        assert r.status_code == 201, r.text


@functools.cache
def bomb() -> bytes:
    return zip_bomb_xlsx(1024 * 1024 * 1024)


def test_an_xlsx_zip_bomb_is_refused_before_parsing(catalog: CatalogHandle) -> None:
    data = bomb()
    assert len(data) < 2 * 1024 * 1024  # small on disk, 1 GiB expanded
    _, key = catalog.org("天津炸弹测试大学")
    with catalog.client(key) as c:
        r = c.post("/v1/patents/bulk", content=data, headers={"content-type": XLSX})
        assert r.status_code == 413, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "expands" in r.json()["detail"]
        r = c.post("/v1/patents/bulk", files={"file": ("bomb.xlsx", data, XLSX)})
        assert r.status_code == 413, r.text


def test_an_xlsx_declaring_too_many_rows_or_columns_is_refused(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津维度测试大学")
    with catalog.client(key) as c:
        r = c.post("/v1/patents/bulk", content=xlsx_with_dimension("A1:K2000000"),
                   headers={"content-type": XLSX})  # fmt: skip
        assert r.status_code == 413, r.text
        assert "2,000,000 rows" in r.json()["detail"]
        r = c.post("/v1/patents/bulk", content=xlsx_with_dimension("A1:XFD10"),
                   headers={"content-type": XLSX})  # fmt: skip
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "file"


NUL_QUERIES = [
    ("/v1/patents", "q"),
    ("/v1/patents", "owner_kind"),
    ("/v1/patents", "ipc"),
    ("/v1/listings", "status"),
    ("/v1/organisations", "q"),
    ("/v1/organisations", "kind"),
    ("/v1/feed", "entity"),
    ("/v1/bundles", "status"),
    ("/v1/stats/pool", "district"),
]


def test_nul_bytes_in_query_parameters_are_422(catalog: CatalogHandle) -> None:
    with catalog.client() as c:
        for path, param in NUL_QUERIES:
            r = c.get(path, params={param: "a\x00b"})
            assert r.status_code == 422, (path, param, r.text)
            assert r.json()["errors"] == [
                {"field": param, "reason": "must not contain a NUL character (U+0000)"}
            ]
        assert c.get("/v1/patents/2021%00").status_code == 422


def test_nul_bytes_in_bodies_are_422_or_a_rejected_row(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津空字符测试大学")
    with catalog.client(key) as c:
        r = c.post("/v1/patents", json=patent("天津空字符测试大学", title="电池\x00材料"))
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "title"
        good = patent("天津空字符测试大学")
        bad = patent("天津空字符测试大学", abstract="摘要\x00")
        r = c.post("/v1/patents/bulk", json=[good, bad])
        assert r.status_code == 200, r.text
        rows = r.json()["rows"]
        assert [row["status"] for row in rows] == ["accepted", "rejected"]
        assert rows[1]["errors"][0]["field"] == "abstract"


def test_every_get_parameter_refuses_nul_and_huge_integers_with_422(
    catalog: CatalogHandle,
) -> None:
    from tests.hostile import probe_parameters

    assert probe_parameters(catalog.url, catalog.admin_key) == []


def test_a_feed_cursor_past_the_end_is_422(catalog: CatalogHandle) -> None:
    with catalog.client() as c:
        head = c.get("/v1/feed", params={"limit": 5000}).json()["next_after"]
        assert c.get("/v1/feed", params={"after": head}).status_code == 200
        r = c.get("/v1/feed", params={"after": head + 1_000_000})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "after"
        assert f"last id {head}" in r.json()["errors"][0]["reason"]


def test_the_upload_report_csv_neutralises_formulas(tmp_path: Path) -> None:
    import csv

    from services.catalog.upload_client import write_report

    out = tmp_path / "r.csv"
    write_report(
        [{"row": 2, "application_number": "=1+1", "status": "rejected",
          "errors": [{"field": "title", "reason": "@cmd|' /C calc'!A0"}]}],
        out,
    )  # fmt: skip
    rows = list(csv.reader(out.open(encoding="utf-8-sig")))
    assert rows[1] == ["2", "'=1+1", "rejected", "title", "'@cmd|' /C calc'!A0"]
