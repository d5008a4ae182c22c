"""Problem details and upload reasons: Chinese by default, English on request."""

from __future__ import annotations

import json

import httpx

from tests.conftest import CatalogHandle
from tests.factories import appno, patent


def _client(catalog: CatalogHandle, key: str, lang: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"}
    if lang:
        headers["Accept-Language"] = lang
    return httpx.Client(base_url=catalog.url, headers=headers, timeout=60)


def test_upload_reasons_in_chinese_by_default_and_english_on_request(
    catalog: CatalogHandle,
) -> None:
    _, key = catalog.org("天津译文大学")
    bad_ipc = patent("天津译文大学", ipc_codes=["not-ipc"])
    missing = {"application_number": appno(), "patentees": ["天津译文大学"]}
    body = json.dumps([bad_ipc, missing])
    ctype = {"content-type": "application/json", "Idempotency-Key": "i18n-1"}
    with _client(catalog, key, None) as c:
        zh = c.post("/v1/patents/bulk", content=body, headers=ctype).json()
    with _client(catalog, key, "en-US,en;q=0.9") as c:
        en = c.post("/v1/patents/bulk", content=body, headers=ctype)  # a replay, in English
    assert en.headers["idempotency-replayed"] == "true"
    zh_rows, en_rows = zh["rows"], en.json()["rows"]
    ipc_zh, ipc_en = zh_rows[0]["errors"][0]["reason"], en_rows[0]["errors"][0]["reason"]
    assert ipc_zh.startswith("[0] 'not-ipc' 不是有效的 IPC 分类号")
    assert ipc_en.startswith("[0] 'not-ipc' is not an IPC symbol")
    title_zh = next(e for e in zh_rows[1]["errors"] if e["field"] == "title")["reason"]
    title_en = next(e for e in en_rows[1]["errors"] if e["field"] == "title")["reason"]
    assert (title_zh, title_en) == ("必填字段", "Field required")


def test_problem_details_in_chinese_by_default(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津译文二大学")
    number = appno()
    with _client(catalog, key, None) as c:
        r = c.get(f"/v1/patents/{number}")
        long_title = c.post("/v1/patents", json=patent("天津译文二大学", title="长" * 600))
    assert r.status_code == 404 and r.json()["title"] == "未找到"
    assert r.headers["content-language"] == "zh-CN"
    assert long_title.status_code == 422
    reason = next(e for e in long_title.json()["errors"] if e["field"] == "title")["reason"]
    assert reason == "最多 500 个字符"
    with _client(catalog, key, "en") as c:
        r = c.get(f"/v1/patents/{number}")
    assert r.json()["title"] == "Not found" and r.headers["content-language"] == "en"
