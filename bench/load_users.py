"""The clients of bench/load_mix.py: a locust file, run by it as a headless subprocess.

Not meant to be run by hand: load_mix.py starts the platform, writes the configuration
(service addresses, keys, the pooled patents) to the file named by LOADMIX_CONFIG and
reads back every request's outcome and every accepted write from the file it names.

Each simulated client loops without think time over the mix (weights are percentages of
requests): keyword search 30, matching 30, bulk upload of 20 records 10, deal record 10
(one in four naming a patent uploaded moments before),
city-plan progress 20, and the portal's search page and bureau dashboard 2 + 1.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task

from bench.portal_bench import KEYWORDS, PROBLEMS
from shared.appno import make_application_number

CONFIG: dict[str, Any] = json.loads(Path(os.environ["LOADMIX_CONFIG"]).read_text("utf-8"))
BASE: dict[str, str] = CONFIG["base"]

# (endpoint, milliseconds, HTTP status) of every request, in the order they ended.
SAMPLES: list[tuple[str, float, int]] = []
# What the platform accepted, to be read back afterwards.
ACCEPTED: dict[str, list[Any]] = {"patents": [], "deals": []}
# The first answers that were errors (endpoint, status, start of the body), to be printed.
ERRORS: list[tuple[str, int, str]] = []
SERIALS = itertools.count(CONFIG["serial_base"])
EVIDENCE = itertools.count(1)
DEAL_PATENTS = itertools.cycle(CONFIG["deal_patents"])
TEXTS: list[list[str]] = CONFIG["texts"]


@events.request.add_listener
def _record(name: str, response_time: float, response: Any, **_: Any) -> None:
    status = int(getattr(response, "status_code", 0) or 0) if response is not None else 0
    SAMPLES.append((name, float(response_time), status))
    if len(SAMPLES) >= CONFIG["max_requests"]:
        runner = _ENV.runner if _ENV else None
        if runner is not None:
            runner.quit()


_ENV: Any = None


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    global _ENV
    _ENV = environment


@events.quitting.add_listener
def _dump(**_: Any) -> None:
    out = {"samples": SAMPLES, "accepted": ACCEPTED, "errors": ERRORS}
    Path(CONFIG["out"]).write_text(json.dumps(out))


def _ok(resp: Any, *codes: int) -> None:
    """Count 429 (documented back-pressure) as answered; load_mix.py reports it apart."""
    if resp.status_code in codes or resp.status_code == 429:
        resp.success()
    else:
        resp.failure(f"{resp.status_code}: {resp.text[:200]}")
        if len(ERRORS) < 20:
            name = str((getattr(resp, "request_meta", None) or {}).get("name", ""))
            ERRORS.append((name, resp.status_code, resp.text[:300]))


class PlatformClient(FastHttpUser):
    host = BASE["catalog"]
    wait_time = constant(0)
    network_timeout = 60.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self.rng = random.Random()
        self.uni = {"Authorization": f"Bearer {CONFIG['keys']['supplier']}"}
        self.city = {"Authorization": f"Bearer {CONFIG['keys']['city_bureau']}"}
        self.portal_signed_in = False

    @task(30)
    def keyword_search(self) -> None:
        with self.client.get(
            f"{BASE['catalog']}/v1/patents",
            params={"q": self.rng.choice(KEYWORDS)},
            name="GET /v1/patents?q=",
            catch_response=True,
        ) as r:
            _ok(r, 200)

    @task(30)
    def match(self) -> None:
        with self.client.post(
            f"{BASE['matching']}/v1/match",
            json={"text": self.rng.choice(PROBLEMS)},
            name="POST /v1/match",
            catch_response=True,
        ) as r:
            _ok(r, 200)

    @task(10)
    def bulk_upload(self) -> None:
        records = []
        for _ in range(20):
            serial = next(SERIALS)
            year = 2012 + serial % 10
            title, abstract = self.rng.choice(TEXTS)
            records.append({
                "application_number": make_application_number(year, "1", serial),
                "title": title, "abstract": abstract, "ipc_codes": ["H01M10/0525"],
                "patentees": [CONFIG["owner"]], "application_date": f"{year}-03-15",
                "legal_status": "pending",
            })  # fmt: skip
        body = "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()
        with self.client.post(
            f"{BASE['catalog']}/v1/patents/bulk",
            data=body,
            headers={**self.uni, "content-type": "application/x-ndjson"},
            name="POST /v1/patents/bulk (20)",
            catch_response=True,
        ) as r:
            _ok(r, 200)
            if r.status_code == 200:
                for row in r.json()["rows"]:
                    if row["status"] in ("accepted", "updated", "unchanged"):
                        ACCEPTED["patents"].append(row["application_number"])

    def deal_patent(self, n: int) -> str:
        """One deal in four names a patent a bulk upload accepted moments ago (indicators
        may not have it from the catalog feed yet); the others a long-pooled one."""
        fresh = ACCEPTED["patents"][-40:]
        if n % 4 == 0 and fresh:
            return self.rng.choice(fresh)
        return next(DEAL_PATENTS)

    @task(10)
    def record_deal(self) -> None:
        n = next(EVIDENCE)
        year = 2021 + n % 3
        day = f"{year}-{1 + n % 12:02d}-{1 + n % 28:02d}"
        licence = n % 2 == 0
        body = {
            "kind": "licence" if licence else "assignment",
            "licence_type": "non_exclusive" if licence else None,
            "application_numbers": [self.deal_patent(n)],
            "supplier_org_ids": [CONFIG["orgs"]["supplier"]],
            "recipient_org_id": CONFIG["orgs"]["sme"],
            "contract_date": day, "effective_date": day,
            "evidence": {"type": "licence_filing" if licence else "transfer_registration",
                         "number": f"{CONFIG['run']}-{n:07d}", "date": day},
            "contract_amount": "80000",
            "payments": [{"amount": "30000", "received_on": day}],
        }  # fmt: skip
        with self.client.post(
            f"{BASE['indicators']}/v1/deals",
            json=body,
            headers=self.city,
            name="POST /v1/deals",
            catch_response=True,
        ) as r:
            _ok(r, 201)
            if r.status_code == 201:
                ACCEPTED["deals"].append([r.json()["id"], body["evidence"]["number"]])

    @task(20)
    def progress(self) -> None:
        with self.client.get(
            f"{BASE['indicators']}/v1/plans/city-001/progress",
            name="GET /v1/plans/city-001/progress",
            catch_response=True,
        ) as r:
            _ok(r, 200)

    @task(2)
    def portal_search(self) -> None:
        with self.client.get(
            f"{BASE['portal']}/search",
            params={"q": self.rng.choice(KEYWORDS)},
            name="portal GET /search",
            catch_response=True,
        ) as r:
            _ok(r, 200)

    @task(1)
    def portal_dashboard(self) -> None:
        if not self.portal_signed_in:
            form = self.client.get(f"{BASE['portal']}/signin", name="portal sign-in")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text or "")
            assert token, "no sign-in form"
            self.client.post(
                f"{BASE['portal']}/signin",
                data={"csrf_token": token.group(1), "login": CONFIG["bureau_login"],
                      "password": CONFIG["password"]},
                name="portal sign-in", allow_redirects=False,
            )  # fmt: skip
            self.portal_signed_in = True
        with self.client.get(
            f"{BASE['portal']}/bureau",
            params={"year": "2023"},
            name="portal GET /bureau (dashboard)",
            catch_response=True,
        ) as r:
            _ok(r, 200)
