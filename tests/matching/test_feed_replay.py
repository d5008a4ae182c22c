"""A parked catalog entry, once replayed by an operator, is matchable at once: the replay
keeps the entry's old feed id (which the index has passed), so matching re-indexes what it
stamped. The poison is real: matching's database refuses the patent (CHECK constraint on
PostgreSQL, ABORT trigger on SQLite) until the operator lifts the rule."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import CatalogHandle
from tests.hostile import refusal_rule, run_sql
from tests.matching.conftest import MatchingHandle, new_patent

UNI = "天津重放测试大学"


def hits(m: MatchingHandle, text: str) -> list[str]:
    with m.client() as c:
        body = c.post("/v1/match", json={"text": text, "k": 5, "pooled_only": False}).json()
    return [h["application_number"] for h in body["hits"]]


def wait_for(check: Any, timeout: float = 60) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_replayed_entry_becomes_matchable(
    catalog: CatalogHandle, matching: MatchingHandle
) -> None:
    add, lift = refusal_rule(matching.database_url, "patent", "title", "POISON")
    run_sql(matching.database_url, add)
    try:
        _, key = catalog.org(UNI)
        with catalog.client(key) as c:
            poison = new_patent(
                UNI, "POISON 钌铱氧化物析氧催化剂", "一种钌铱氧化物析氧催化剂。", []
            )
            after = new_patent(UNI, "一种钨酸铋光催化降解材料", "钨酸铋光催化降解有机污染物。", [])
            for body in (poison, after):
                assert c.post("/v1/patents", json=body).status_code in (200, 201)
        # Parked; the patent after it is indexed; the poison is not.
        wait_for(lambda: after["application_number"] in hits(matching, "钨酸铋光催化"))
        with matching.client(catalog.admin_key) as c:
            parked = wait_for(lambda: c.get("/v1/feed/parked").json())
        assert poison["application_number"] not in hits(matching, "钌铱氧化物析氧催化剂")
    finally:
        run_sql(matching.database_url, lift)  # the operator fixes the cause
    with matching.client(catalog.admin_key) as c:
        r = c.post(f"/v1/feed/parked/{parked[0]['id']}/replay")
        assert r.status_code == 200 and r.json()["status"] == "replayed", r.text
        assert r.json()["reindexed"] == 1
    # Matchable at once, without waiting for a rebuild or a restart.
    assert hits(matching, "钌铱氧化物析氧催化剂")[0] == poison["application_number"]
