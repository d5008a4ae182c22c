"""Every service's /metrics, scraped before and after real traffic between live services."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from tests.deploy.conftest import SYNC_UPLOAD_LIMIT, Live, scrape, value, wait_for
from tests.factories import offer, patent
from tests.indicators.conftest import deal_body

ROOT = Path(__file__).resolve().parents[2]
UNI = "天津度量大学"


def test_every_service_counts_requests_latency_errors_feeds_and_jobs(live: Live) -> None:
    before = {name: scrape(url) for name, url in live.urls.items()}
    uni, key = live.catalog.org(UNI)
    sme, _ = live.catalog.org("度量科技公司", "sme", None, district="dongli", is_sme=True)
    _, bureau = live.catalog.org("度量市局", "other", "city_bureau", district="hexi")

    numbers = []
    with live.catalog.client(key) as c:
        for _ in range(3):
            p = patent(UNI)
            assert c.post("/v1/patents", json=p).status_code == 201
            body = {"application_number": p["application_number"], **offer()}
            assert c.post("/v1/listings", json=body).status_code == 201
            numbers.append(p["application_number"])
        assert c.get(f"/v1/patents/{numbers[0]}").status_code == 200
        assert c.get("/v1/patents/2099100000001").status_code in (404, 422)
        job = c.post("/v1/patents/bulk", json=[patent(UNI) for _ in range(SYNC_UPLOAD_LIMIT + 3)])
        assert job.status_code == 202, job.text
        wait_for(lambda: c.get(job.json()["poll"]).json()["status"] == "done")
    with live.catalog.client() as c:
        head = c.get("/v1/feed", params={"limit": 5000}).json()["next_after"]

    with httpx.Client(base_url=live.matching.url, timeout=60) as c:
        wait_for(lambda: c.get("/readyz").json()["catalog_feed"] == f"ok at {head}")
        r = c.post("/v1/match", json={"text": "锂离子电池正极材料", "pooled_only": False, "k": 5})
        assert r.status_code == 200, r.text
        assert c.post("/v1/match", json={"k": "many"}).status_code == 422

    with httpx.Client(base_url=live.indicators_url, timeout=60) as c:
        wait_for(lambda: c.get("/readyz").json()["catalog_feed"] == f"ok at {head}")
        r = c.post(
            "/v1/deals",
            json=deal_body(patents=[numbers[0]], suppliers=[uni], recipient=sme),
            headers={"Authorization": f"Bearer {bureau}"},
        )
        assert r.status_code == 201, r.text

    with httpx.Client(base_url=live.portal_url, timeout=60) as c:
        assert c.get("/signin").status_code == 200
        assert c.get("/no-such-page").status_code == 404

    after = {name: scrape(url) for name, url in live.urls.items()}
    cat_b, cat_a = before["catalog"], after["catalog"]
    m_b, m_a = before["matching"], after["matching"]
    ind_a = after["indicators"]

    def grew(samples_b: Any, samples_a: Any, name: str, by: float, **labels: str) -> None:
        delta = value(samples_a, name, **labels) - value(samples_b, name, **labels)
        assert delta == by, (name, labels, delta)

    # Requests by route template (never the raw path), with latency and errors.
    grew(cat_b, cat_a, "tjp_http_requests_total", 3,
         method="POST", route="/v1/patents", status="201")  # fmt: skip
    grew(cat_b, cat_a, "tjp_http_request_duration_seconds_count", 3,
         method="POST", route="/v1/patents")  # fmt: skip
    assert value(cat_a, "tjp_http_request_duration_seconds_sum",
                 method="POST", route="/v1/patents") > 0  # fmt: skip
    grew(cat_b, cat_a, "tjp_http_requests_total", 1,
         method="GET", route="/v1/patents/{number}", status="200")  # fmt: skip
    assert value(cat_a, "tjp_http_errors_total",
                 method="GET", route="/v1/patents/{number}", status_class="4xx") == 1  # fmt: skip
    assert not any("2099100000001" in str(k) for k in cat_a), "a raw path became a label"
    # The bulk upload ran as a background job and was timed.
    # (The job's task ends after its statistics refresh, a moment after it reports done.)
    job_count = "tjp_upload_job_duration_seconds_count"
    wait_for(lambda: value(scrape(live.catalog.url), job_count, outcome="finished") >= 1)
    assert (
        value(scrape(live.catalog.url), job_count, outcome="finished")
        - value(cat_b, job_count, outcome="finished")
        == 1
    )
    # The catalog follows the indicators' deal feed; matching follows the catalog's.
    wait_for(lambda: value(scrape(live.catalog.url), "tjp_feed_position", source="indicators") > 0)
    assert value(m_a, "tjp_feed_position", source="catalog") >= head  # the deal adds more
    assert value(m_a, "tjp_feed_applied_total", source="catalog") > value(
        m_b, "tjp_feed_applied_total", source="catalog"
    )
    assert value(m_a, "tjp_feed_parked_open", source="catalog") == 0
    assert ("tjp_feed_lag_seconds", frozenset({("source", "catalog")})) in m_a
    # Index size: every uploaded patent is in the matcher's index.
    assert value(m_a, "tjp_matching_index_patents") == 3 + SYNC_UPLOAD_LIMIT + 3
    assert value(m_a, "tjp_matching_index_patents") > value(m_b, "tjp_matching_index_patents")
    grew(m_b, m_a, "tjp_http_requests_total", 1, method="POST", route="/v1/match", status="200")
    grew(m_b, m_a, "tjp_http_errors_total", 1, method="POST", route="/v1/match",
         status_class="4xx")  # fmt: skip
    # Indicators: the deal, and both of its feeds.
    assert value(ind_a, "tjp_http_requests_total", method="POST", route="/v1/deals",
                 status="201") == 1  # fmt: skip
    assert value(ind_a, "tjp_feed_position", source="catalog") >= head
    assert ("tjp_feed_position", frozenset({("source", "matching")})) in ind_a
    # The portal: pages by template, unknown paths under one label.
    grew(before["portal"], after["portal"], "tjp_http_requests_total", 1,
         method="GET", route="/signin", status="200")  # fmt: skip
    grew(before["portal"], after["portal"], "tjp_http_requests_total", 1,
         method="GET", route="<unmatched>", status="404")  # fmt: skip


def test_metrics_are_per_service_not_merged(live: Live) -> None:
    """Four services in one process: each /metrics shows only its own routes."""
    with httpx.Client(timeout=30) as c:
        assert c.post(f"{live.matching.url}/v1/match", json={"text": "电池"}).status_code == 200
    cat = scrape(live.catalog.url)
    assert not any(dict(labels).get("route") == "/v1/match" for _, labels in cat)
    assert any(dict(labels).get("route") == "/v1/match" for _, labels in scrape(live.matching.url))


def test_the_grafana_dashboard_reads_only_series_the_services_export(live: Live) -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "tjp-platform.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    for url in live.urls.values():  # an error each, so the error counters have series
        assert httpx.get(f"{url}/v1/no-such-route", timeout=30).status_code == 404
    named = {n for e in exprs for n in re.findall(r"\b(tjp_[a-z_]+)", e)}
    exported = {name for url in live.urls.values() for name, _ in scrape(url)}
    # Histograms and counters only show once observed: the upload-job histogram needs a job.
    exported |= {"tjp_upload_job_duration_seconds_bucket", "tjp_upload_job_duration_seconds_count"}
    assert len(named) >= 10
    assert named <= exported, named - exported
