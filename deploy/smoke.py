"""Smoke check of a running platform through its reverse proxy (deploy/compose-smoke.sh).

    python deploy/smoke.py http://127.0.0.1:18080 ADMIN_KEY

Makes a university, an SME and the city bureau; uploads and pools a patent; waits until
matching finds it; records a deal; reads the city plan's progress. Prints each step with
its time; exits non-zero on the first failure.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from shared.appno import make_application_number

T0 = time.perf_counter()


def step(name: str, detail: str = "") -> None:
    print(f"[{time.perf_counter() - T0:6.2f}s] {name}{': ' + detail if detail else ''}", flush=True)


def until(what: str, probe: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise SystemExit(f"FAILED: {what} within {timeout:.0f} s")
        time.sleep(0.25)


def ok(r: httpx.Response, *codes: int) -> dict[str, Any]:
    if r.status_code not in (codes or (200, 201)):
        raise SystemExit(f"FAILED: {r.request.method} {r.request.url} -> {r.status_code} {r.text}")
    return r.json()  # type: ignore[no-any-return]


def uscc() -> str:
    from services.catalog.domain.uscc import make_uscc

    return make_uscc(f"121201040{random.randrange(10**8):08d}")


def main(base: str, admin: str) -> None:
    c = httpx.Client(base_url=base, timeout=60)
    auth = lambda key: {"Authorization": f"Bearer {key}"}  # noqa: E731
    r = c.get("/", headers={"X-Request-ID": "smoke-portal-1"})
    assert r.status_code in (200, 303), r.status_code
    assert r.headers["x-request-id"] == "smoke-portal-1", r.headers
    step("portal answers through the proxy", f"HTTP {r.status_code}, request id kept")
    assert c.get("/metrics").status_code == 404 and c.get("/api/catalog/metrics").status_code == 404
    step("metrics are not public", "404 at the proxy")

    tag = uuid.uuid4().hex[:6]

    def org(kind: str, name: str, role: str | None, **extra: Any) -> tuple[int, str]:
        body = {"kind": kind, "name": name, "uscc": uscc(), "district": "nankai", **extra}
        made = ok(c.post("/api/catalog/v1/organisations", json=body, headers=auth(admin)), 201)
        key = ""
        if role:
            key = ok(c.post(f"/api/catalog/v1/organisations/{made['id']}/keys",
                            json={"role": role}, headers=auth(admin)), 201)["key"]  # fmt: skip
        return int(made["id"]), key

    uni, uni_key = org("university", f"天津冒烟测试大学{tag}", "supplier")
    sme, _ = org("sme", f"冒烟科技公司{tag}", None, is_sme=True,
                 sme_basis="工信部联企业〔2011〕300号 小型企业")  # fmt: skip
    _, bureau = org("other", f"冒烟市局{tag}", "city_bureau", district="hexi")
    step("organisations and keys", f"university {uni}, SME {sme}, city bureau")

    number = make_application_number(2019, "1", random.randrange(1_000_000, 9_999_999))
    patent = {
        "application_number": number,
        "title": "一种LED驱动恒流升压电路",
        "abstract": "LED灯具驱动电路，采用恒流升压拓扑，降低驱动芯片温升，解决灯具过热问题。",
        "ipc_codes": ["H05B 45/37"],
        "patentees": [f"天津冒烟测试大学{tag}"],
        "legal_status": "granted",
        "application_date": "2019-03-01",
        "grant_date": "2021-05-01",
    }
    ok(c.post("/api/catalog/v1/patents", json=patent, headers=auth(uni_key)), 201)
    listing = {"application_number": number, "modes": ["assignment"], "price_cny": "50000"}
    ok(c.post("/api/catalog/v1/listings", json=listing, headers=auth(uni_key)), 201)
    step("patent uploaded and pooled", number)

    def matched() -> bool:
        hits = ok(c.post("/api/matching/v1/match",
                         json={"text": "LED灯具驱动过热 恒流升压", "k": 20}))["hits"]  # fmt: skip
        return any(h["application_number"] == number for h in hits)

    until("matching finds the patent", matched)
    step("matchable", "POST /api/matching/v1/match ranks it")

    deal = {
        "kind": "assignment", "licence_type": None, "status": "effective",
        "application_numbers": [number], "supplier_org_ids": [uni], "recipient_org_id": sme,
        "contract_date": "2022-05-01", "effective_date": "2022-05-10",
        "evidence": {"type": "transfer_registration", "number": f"SMOKE{tag}",
                     "date": "2022-05-10"},
        "contract_amount": "50000",
    }  # fmt: skip

    def recorded() -> dict[str, Any] | None:
        # One id for the deal: the indicators service passes it on to the catalog.
        headers = {**auth(bureau), "X-Request-ID": f"smoke-deal-{tag}"}
        r = c.post("/api/indicators/v1/deals", json=deal, headers=headers)
        if r.status_code == 201:
            return r.json()  # type: ignore[no-any-return]
        if r.status_code in (409, 422) and "evidence" not in r.text:
            return None  # the indicators service has not seen the patent yet
        ok(r, 201)
        return None

    made = until("the deal is recorded", recorded)
    step("deal recorded", f"deal {made['id']}, request id smoke-deal-{tag}")

    def progressed() -> dict[str, Any] | None:
        rows = ok(c.get("/api/indicators/v1/plans/city-001/progress", params={"year": 2022}))
        by_code = {row["code"]: row for row in rows["indicators"]}
        return by_code if any(r.get("actual") for r in by_code.values()) else None

    rows = until("the plan's progress counts the deal", progressed)
    counted = {k: v["actual"] for k, v in rows.items() if v.get("actual")}
    step("progress read", f"city-001 2022: {counted}")

    def converted() -> bool:
        got = ok(c.get(f"/api/catalog/v1/patents/{number}"))
        return bool(got.get("listing") and got["listing"]["status"] == "converted")

    until("the catalog marks the listing converted", converted)
    step("catalog follows the deal", "listing converted")
    print("SMOKE OK", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
