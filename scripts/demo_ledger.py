"""Record a small demo ledger in the running platform, through the indicators API.

Deals from the Tianjin universities in the demo pool to the demo SMEs, dated 2021-2023
(fictional, like the SMEs): assignments, licences, an equity contribution, one deal
cancelled, plus a pledge. Run by scripts/run on the first start; safe to re-run (deals
already recorded are refused as duplicate evidence and left alone).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

CATALOG = "http://127.0.0.1:8101"
INDICATORS = "http://127.0.0.1:8103"
SMES = ["天津示例新能源科技有限公司", "天津示例智能装备有限公司", "天津示例生物医药有限公司"]
TIANJIN_DISTRICTS_WITH_SUPPLIERS = ["nankai", "binhai", "beichen"]


def pooled_tianjin_patents(c: httpx.Client) -> list[dict[str, Any]]:
    found = []
    for district in TIANJIN_DISTRICTS_WITH_SUPPLIERS:
        r = c.get(
            f"{CATALOG}/v1/patents",
            params={
                "district": district,
                "owner_kind": "university",
                "pool_status": "pooled",
                "limit": 50,
            },
        )
        found += r.json()["items"]
    return sorted(found, key=lambda p: p["application_number"])


def org_ids(c: httpx.Client, names: list[str]) -> dict[str, int]:
    out = {}
    for name in names:
        items = c.get(f"{CATALOG}/v1/organisations", params={"q": name}).json()["items"]
        out[name] = next(o["id"] for o in items if o["name"] == name)
    return out


def deals(patents: list[dict[str, Any]], smes: dict[str, int]) -> list[dict[str, Any]]:
    out = []
    sme_ids = [smes[n] for n in SMES]
    for i, p in enumerate(patents):
        year = 2021 + i % 3
        contract = date(year, 3 + (i * 2) % 9, 5 + i % 20)
        effective = contract + timedelta(days=10)
        kind = ["assignment", "licence", "licence", "equity"][i % 4]
        amount = [0, 50_000, 120_000, 300_000][i % 4]
        deal: dict[str, Any] = {
            "kind": kind,
            "status": "effective",
            "application_numbers": [p["application_number"]],
            "supplier_org_ids": p["owner_org_ids"][:1],
            "recipient_org_id": sme_ids[i % 3],
            "contract_date": contract.isoformat(),
            "effective_date": effective.isoformat(),
            "contract_amount": str(amount),
            "zero_price": amount == 0,
            "payments": []
            if amount == 0
            else [
                {
                    "amount": str(amount // 2),
                    "received_on": (effective + timedelta(days=30)).isoformat(),
                }
            ],
            "note": "演示数据（虚构）",
        }
        if kind == "licence":
            deal["licence_type"] = "non_exclusive" if i % 2 else "exclusive"
            deal["evidence"] = {
                "type": "licence_filing",
                "number": f"DEMO-L-{year}-{i:04d}",
                "date": (effective + timedelta(days=5)).isoformat(),
            }
        else:
            deal["evidence"] = {
                "type": "transfer_registration",
                "number": f"DEMO-T-{year}-{i:04d}",
                "date": (effective + timedelta(days=5)).isoformat(),
            }
        out.append(deal)
    return out


def main(keys_file: Path, catalog: int = 8101, indicators: int = 8103) -> int:
    global CATALOG, INDICATORS
    CATALOG, INDICATORS = f"http://127.0.0.1:{catalog}", f"http://127.0.0.1:{indicators}"
    keys = json.loads(keys_file.read_text(encoding="utf-8"))
    bureau = {"Authorization": f"Bearer {keys['天津市知识产权局（示例）']}"}
    with httpx.Client(timeout=60) as c:
        patents = pooled_tianjin_patents(c)
        if not patents:
            print("demo ledger: no pooled Tianjin university patents; nothing to record")
            return 0
        items = deals(patents, org_ids(c, SMES))
        # The indicators service learns patents and organisations from the catalog feed;
        # wait until it has caught up (unknown patents are refused until then).
        for _ in range(60):
            r = c.post(f"{INDICATORS}/v1/deals/batch", json=items, headers=bureau)
            result = r.json()
            unknown = [x for x in result.get("rejected", []) if x["status"] == 422]
            if r.status_code == 200 and not unknown:
                break
            items = [items[x["index"]] for x in unknown]
            time.sleep(1)
        created = c.get(f"{INDICATORS}/v1/deals", params={"limit": 500}, headers=bureau).json()
        ids = [d["id"] for d in created.get("items", [])]
        if ids and not any(d["status"] == "cancelled" for d in created["items"]):
            c.post(
                f"{INDICATORS}/v1/deals/{ids[-1]}/cancel",
                headers=bureau,
                json={"reason": "演示：合同解除"},
            )
        print(f"demo ledger: {len(ids)} deals recorded ({len(patents)} pooled Tianjin patents)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("var/demo-keys.json")))
