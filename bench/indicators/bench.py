"""Indicators benchmark: 1,000,000 deals and 100,000 pooled patents in PostgreSQL.

    .venv/bin/python -m bench.indicators.bench [--deals 1000000] [--pooled 100000]
        [--url postgresql://postgres@127.0.0.1:5432/test] [--keep] [--skip-xlsx] [--smoke]

Creates a scratch database, migrates it with the service's own Alembic history, loads
synthetic data with COPY (party attributes frozen and the counting flags set by the same
rule functions the service uses), then measures, median of several runs:

- floor: the bare SQL aggregation behind the 1000 target (one statement, asyncpg);
- the whole city plan (19 indicators) through `plan_progress`, and through HTTP;
- Binhai's table (23 rows) the same way;
- the ledger exported to XLSX (one row per deal, Chinese headers).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from services.indicators.domain import exports
from services.indicators.domain.plans import get_plan, plan_progress
from services.indicators.domain.rules import (
    Party,
    Window,
    academic_to_sme,
    deal_qualifies,
    lead_supplier,
    sme_patent_deals_stmt,
)
from services.indicators.main import MIGRATIONS, create_app
from services.indicators.settings import IndicatorsSettings
from shared.appno import check_char
from shared.db import Database, upgrade
from shared.regions import TIANJIN_DISTRICTS
from shared.testing import LiveServer

DISTRICTS = list(TIANJIN_DISTRICTS)
KINDS = ["assignment", "licence", "licence", "licence", "equity"]
LICENCE_TYPES = ["exclusive", "sole", "non_exclusive", "non_exclusive", "open"]


def pg_parts(url: str) -> dict[str, Any]:
    u = make_url(url)
    return {"host": u.host, "port": u.port or 5432, "user": u.username, "password": u.password}


def appno(i: int) -> str:
    digits = f"2019{1 if i % 3 else 2}{i:07d}"
    return f"{digits}.{check_char(digits)}"


async def load(url: str, n_deals: int, n_pooled: int, seed: int = 7) -> dict[str, int]:
    rnd = random.Random(seed)
    conn = await asyncpg.connect(database=make_url(url).database, **pg_parts(url))
    now = datetime(2026, 11, 1, tzinfo=UTC)
    counts: dict[str, int] = {}
    try:
        # organisations: suppliers and SMEs/enterprises, one version each
        orgs: list[Party] = []
        oid = 0
        for kind, n in [("university", 300), ("institute", 500), ("soe", 700),
                        ("enterprise", 3000), ("sme", 60000)]:  # fmt: skip
            for _ in range(n):
                oid += 1
                outside = rnd.random() < 0.08
                district = None if outside else rnd.choice(DISTRICTS)
                orgs.append(Party(oid, f"{kind}-{oid}", kind, district, not outside,
                                  kind == "sme"))  # fmt: skip
        await conn.copy_records_to_table(
            "org",
            records=[
                (
                    o.org_id,
                    o.name,
                    o.kind,
                    o.district,
                    None if o.in_tianjin else "北京市",
                    o.in_tianjin,
                    o.is_sme,
                    now,
                )
                for o in orgs
            ],  # fmt: skip
            columns=[
                "id",
                "name",
                "kind",
                "district",
                "province",
                "in_tianjin",
                "is_sme",
                "updated_at",
            ],  # fmt: skip
        )
        await conn.copy_records_to_table(
            "org_version",
            records=[
                (o.org_id, now, o.name, o.kind, o.district, o.in_tianjin, o.is_sme) for o in orgs
            ],  # fmt: skip
            columns=["org_id", "valid_from", "name", "kind", "district", "in_tianjin", "is_sme"],
        )
        suppliers = [o for o in orgs if o.kind in ("university", "institute", "soe")]
        others = [o for o in orgs if o.kind == "enterprise"]
        recipients = [o for o in orgs if o.kind in ("sme", "enterprise")]
        counts["organisations"] = len(orgs)

        # patents and the pool: n_pooled listings, 30 % of them converted later
        n_patents = max(n_pooled * 2, 200_000)
        industries = [f"{a}.{b}" for a in range(1, 10) for b in range(1, 6)]
        patents = []
        for i in range(1, n_patents + 1):
            owner = rnd.choice(suppliers)
            patents.append((i, appno(i), "invention", f"patent {i}", f'["{rnd.choice(industries)}"]',
                            rnd.choice(industries), f"[{owner.org_id}]", "granted"))  # fmt: skip
        await conn.copy_records_to_table(
            "patent",
            records=[(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]) for p in patents],
            columns=[
                "id",
                "application_number",
                "patent_type",
                "title",
                "industries",
                "main_industry",
                "owner_org_ids",
                "legal_status",
            ],  # fmt: skip
        )
        listings, events = [], []
        for i in range(1, n_pooled + 1):
            first = datetime(2021, 1, 1, tzinfo=UTC) + timedelta(
                minutes=rnd.randrange(0, 3 * 525600)
            )
            district = rnd.choice(DISTRICTS)
            status = "converted" if rnd.random() < 0.3 else "listed"
            listings.append((i, i, patents[i - 1][1], status, "[]", district, first, first))
            if status == "converted":
                conv = first + timedelta(days=rnd.randrange(10, 400))
                events.append((i, "listed", first, conv, district))
                events.append((i, "converted", conv, None, district))
            else:
                events.append((i, "listed", first, None, district))
        await conn.copy_records_to_table(
            "listing", records=listings,
            columns=["id", "patent_id", "application_number", "status", "owner_org_ids",
                     "owner_district", "first_listed_at", "updated_at"],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "pool_event", records=events,
            columns=["listing_id", "status", "at", "ended_at", "owner_district"],
        )  # fmt: skip
        counts["patents"], counts["pooled"], counts["pool_events"] = (
            n_patents, n_pooled, len(events))  # fmt: skip

        # deals in chunks
        deal_cols = ["id", "kind", "licence_type", "status", "contract_date", "effective_date",
                     "year", "evidence_type", "evidence_number", "evidence_date", "evidence_key",
                     "contract_amount", "amount_received", "zero_price", "use_first_pay_later",
                     "recipient_org_id", "recipient_name", "recipient_kind",
                     "recipient_district", "recipient_in_tianjin", "recipient_is_sme",
                     "qualifies", "academic_to_sme", "lead_supplier_org_id", "note",
                     "created_by_org_id", "created_by_role", "created_at", "updated_at",
                     "version"]  # fmt: skip
        line_cols = ["id", "deal_id", "patent_id", "application_number", "industry", "kind",
                     "year", "effective_date", "recipient_org_id", "recipient_district",
                     "lead_supplier_org_id", "active", "counts"]  # fmt: skip
        line_id = 0
        n_lines = n_payments = 0
        start = date(2019, 1, 1)
        chunk = 100_000
        for lo in range(1, n_deals + 1, chunk):
            deals, lines, sups, pays = [], [], [], []
            for did in range(lo, min(lo + chunk, n_deals + 1)):
                kind = rnd.choice(KINDS)
                lt = rnd.choice(LICENCE_TYPES) if kind == "licence" else None
                ev_type = ("open_licence_notice" if lt == "open" else "licence_filing") if lt \
                    else "transfer_registration"  # fmt: skip
                contract = start + timedelta(days=rnd.randrange(0, 7 * 365))
                eff = contract + timedelta(days=rnd.randrange(0, 60))
                r = rnd.random()
                status = "effective" if r < 0.9 else ("registered" if r < 0.95 else "cancelled")
                sup = [rnd.choice(suppliers) if rnd.random() < 0.85 else rnd.choice(others)]
                if rnd.random() < 0.1:
                    extra = rnd.choice(suppliers)
                    if extra.org_id != sup[0].org_id:
                        sup.append(extra)
                rec = rnd.choice(recipients)
                q = deal_qualifies(sup, rec)
                zero = rnd.random() < 0.03
                amount = Decimal(0) if zero else Decimal(rnd.randrange(1, 500) * 1000)
                received = Decimal(0) if zero else amount * Decimal(rnd.choice([0, 0.5, 1]))
                lead = lead_supplier(sup)
                deals.append((did, kind, lt, status, contract, eff, eff.year, ev_type,
                              f"EV{did}", eff, f"{ev_type}:EV{did}", amount, received, zero,
                              False, rec.org_id, rec.name, rec.kind, rec.district,
                              rec.in_tianjin, rec.is_sme, q, academic_to_sme(sup, rec),
                              lead.org_id, "", 1, "city_bureau", now, now, 1))  # fmt: skip
                for pos, s in enumerate(sup):
                    sups.append((did, s.org_id, pos, s.name, s.kind, s.district, s.in_tianjin,
                                 s.is_sme))  # fmt: skip
                k = 1 if rnd.random() < 0.8 else rnd.randrange(2, 6)
                for pid in rnd.sample(range(1, n_patents + 1), k):
                    line_id += 1
                    active = status == "effective"
                    lines.append((line_id, did, pid, patents[pid - 1][1], patents[pid - 1][5], kind,
                                  eff.year, eff, rec.org_id, rec.district, lead.org_id, active,
                                  active and q))  # fmt: skip
                if received:
                    pays.append((did, received, eff + timedelta(days=30), (eff + timedelta(days=30)).year, "", now))  # fmt: skip
            await conn.copy_records_to_table("deal", records=deals, columns=deal_cols)
            await conn.copy_records_to_table(
                "deal_supplier", records=sups,
                columns=["deal_id", "org_id", "position", "name", "kind", "district",
                         "in_tianjin", "is_sme"],
            )  # fmt: skip
            await conn.copy_records_to_table("deal_patent", records=lines, columns=line_cols)
            await conn.copy_records_to_table(
                "payment", records=pays,
                columns=["deal_id", "amount", "received_on", "year", "note", "created_at"],
            )  # fmt: skip
            n_lines += len(lines)
            n_payments += len(pays)
            print(f"  loaded {min(lo + chunk - 1, n_deals):>9,} deals", flush=True)
        counts["deals"], counts["deal_lines"], counts["payments"] = n_deals, n_lines, n_payments
        await conn.execute("SELECT setval(pg_get_serial_sequence('deal', 'id'), $1)", n_deals)
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('deal_patent', 'id'), $1)", line_id
        )

        pledges = []
        for i in range(20_000):
            o = rnd.choice(recipients)
            d = date(2018, 1, 1) + timedelta(days=rnd.randrange(0, 8 * 365))
            pledges.append((f"ZY{i}", o.org_id, o.name, o.kind, o.district, o.is_sme, "银行",
                            Decimal(rnd.randrange(10, 5000) * 10000), d, d.year,
                            rnd.choice(["patent", "patent", "mixed", "trademark"]), "[]", "[]",
                            "active", "", 1, now))  # fmt: skip
        await conn.copy_records_to_table(
            "pledge", records=pledges,
            columns=["registration_number", "pledgor_org_id", "pledgor_name", "pledgor_kind",
                     "pledgor_district", "pledgor_is_sme", "lender", "amount", "registered_on",
                     "year", "asset_kind", "application_numbers", "trademark_numbers", "status",
                     "note", "created_by_org_id", "created_at"],
        )  # fmt: skip
        filings = []
        for i in range(20_000):
            o = rnd.choice(recipients)
            d = date(2019, 1, 1) + timedelta(days=rnd.randrange(0, 7 * 365))
            filings.append((f"BA{i}", o.org_id, o.name, o.district, o.is_sme, f"产品{i}", d,
                            d.year, "[]", "", 1, now))  # fmt: skip
        await conn.copy_records_to_table(
            "product_filing", records=filings,
            columns=["filing_number", "org_id", "org_name", "org_district", "org_is_sme",
                     "product_name", "filed_on", "year", "application_numbers", "note",
                     "created_by_org_id", "created_at"],
        )  # fmt: skip
        counts["pledges"], counts["product_filings"] = len(pledges), len(filings)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return counts


async def timed(fn: Any, runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = await fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


async def measure(url: str, runs: int, skip_xlsx: bool) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    db = Database(url)
    city, binhai = get_plan("city-001"), get_plan("binhai-002")
    as_of = date(2023, 12, 31)
    conn = await asyncpg.connect(database=make_url(url).database, **pg_parts(url))
    try:
        from sqlalchemy.dialects import postgresql

        stmt = sme_patent_deals_stmt(Window(start=city.start, as_of=as_of)).compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
        sql = str(stmt)
        await conn.fetch(sql)  # warm
        floor, res = await timed(lambda: conn.fetch(sql), runs)
        total_1000 = sum(r[1] for r in res)
        rows.append(("floor: bare SQL of the 1000 count, as the service runs it (asyncpg)",
                     f"{floor:.0f} ms"))  # fmt: skip
        await conn.execute(
            "SET enable_indexscan = off; SET enable_indexonlyscan = off; "
            "SET enable_bitmapscan = off"
        )
        plain_sql = "/* plain scan */ " + sql  # a new prepared statement, planned anew
        plain, _ = await timed(lambda: conn.fetch(plain_sql), runs)
        await conn.execute("RESET ALL")
        rows.append(("floor without indexes: the same count as a plain table scan",
                     f"{plain:.0f} ms"))  # fmt: skip
        norm = """SELECT d.year, count(*) FROM deal_patent dp JOIN deal d ON d.id = dp.deal_id
          WHERE d.status = 'effective' AND d.effective_date BETWEEN '2021-01-01' AND '2023-12-31'
            AND d.recipient_is_sme AND d.recipient_in_tianjin AND EXISTS (
              SELECT 1 FROM deal_supplier s WHERE s.deal_id = d.id AND s.in_tianjin
                AND s.kind IN ('university','institute','soe'))
            AND dp.repeat_of_deal_id IS NULL GROUP BY d.year"""
        t_norm, res2 = await timed(lambda: conn.fetch(norm), max(1, runs // 2))
        assert sum(r[1] for r in res2) == total_1000, "denormalised and joined counts differ"
        rows.append(("reference: same count joined over deal + suppliers", f"{t_norm:.0f} ms"))
    finally:
        await conn.close()

    await plan_progress(db.sessionmaker, city, 2023, as_of=as_of)  # warm the pool
    t_city, prog = await timed(
        lambda: plan_progress(db.sessionmaker, city, 2023, as_of=as_of), runs
    )
    c04 = next(r for r in prog["indicators"] if r["code"] == "C04")
    assert c04["actual"] == total_1000
    rows.append(("whole city plan (19 indicators), plan_progress", f"{t_city:.0f} ms"))
    t_bh, _ = await timed(lambda: plan_progress(db.sessionmaker, binhai, 2022), runs)
    rows.append(("Binhai table (23 rows), plan_progress", f"{t_bh:.0f} ms"))

    app = create_app(IndicatorsSettings(database_url=url, follow_feeds=False,
                                        migrate_on_startup=False))  # fmt: skip
    server = LiveServer(app).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=600) as c:
            await c.get("/v1/plans/city-001/progress", params={"year": 2023})

            async def http_city() -> Any:
                return (await c.get("/v1/plans/city-001/progress", params={"year": 2023})).json()

            async def http_bh() -> Any:
                return (await c.get("/v1/plans/binhai-002/progress", params={"year": 2022})).json()

            async def http_xlsx() -> Any:
                return await c.get("/v1/plans/city-001/progress",
                                   params={"year": 2023, "format": "xlsx"})  # fmt: skip

            t, _ = await timed(http_city, runs)
            rows.append(("whole city plan over HTTP (JSON)", f"{t:.0f} ms"))
            t, _ = await timed(http_bh, runs)
            rows.append(("Binhai table over HTTP (JSON)", f"{t:.0f} ms"))
            t, _ = await timed(http_xlsx, runs)
            rows.append(("city plan progress as XLSX over HTTP", f"{t:.0f} ms"))
            if not skip_xlsx:
                t0 = time.perf_counter()
                async with c.stream("GET", "/v1/ledger/export", params={"format": "xlsx"}) as r:
                    size = 0
                    async for chunk in r.aiter_bytes():
                        size += len(chunk)
                t_x = time.perf_counter() - t0
                rows.append(("ledger export, XLSX over HTTP (all deals)",
                             f"{t_x:.1f} s, {size / 1e6:.0f} MB"))  # fmt: skip
                t0 = time.perf_counter()
                async with c.stream("GET", "/v1/ledger/export", params={"format": "csv"}) as r:
                    size = 0
                    async for chunk in r.aiter_bytes():
                        size += len(chunk)
                rows.append(("ledger export, CSV over HTTP (all deals)",
                             f"{time.perf_counter() - t0:.1f} s, {size / 1e6:.0f} MB"))  # fmt: skip
    finally:
        server.stop()
        await db.dispose()
    rows.append(("1000-target count (patent-deals, 2021-2023)", f"{total_1000:,}"))
    rows.append(("ratio city plan / floor (index-only floor)", f"{t_city / floor:.1f}x"))
    rows.append(("ratio city plan / plain-scan floor", f"{t_city / plain:.1f}x"))
    _ = exports  # the export path is exercised through HTTP above
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--deals", type=int, default=1_000_000)
    ap.add_argument("--pooled", type=int, default=100_000)
    ap.add_argument("--url", default=os.environ.get("TEST_DATABASE_URL",
                                                    "postgresql://postgres@127.0.0.1:5432/test"))  # fmt: skip
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument("--skip-xlsx", action="store_true")
    ap.add_argument("--db", help="measure an existing database kept with --keep (no load)")
    ap.add_argument("--smoke", action="store_true",
                    help="a tiny run (2,000 deals, 500 pooled, 1 run) so CI sees it still works")  # fmt: skip
    args = ap.parse_args()
    if args.smoke:
        args.deals, args.pooled, args.runs = 2_000, 500, 1
    admin = make_url(args.url)
    if args.db:
        url = admin.set(database=args.db).render_as_string(hide_password=False)
        for k, v in asyncio.run(measure(url, args.runs, args.skip_xlsx)):
            print(f"| {k} | {v} |")
        return
    name = f"tjp_bench_ind_{uuid.uuid4().hex[:8]}"

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(database=admin.database, **pg_parts(args.url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(MIGRATIONS, url)
        t = time.perf_counter()
        counts = asyncio.run(load(url, args.deals, args.pooled))
        load_s = time.perf_counter() - t
        results = asyncio.run(measure(url, args.runs, args.skip_xlsx))
    finally:
        if args.keep:
            print(f"kept database {name}")
        else:
            asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print()
    print(f"machine: {os.cpu_count()} cores, {platform.python_implementation()} "
          f"{platform.python_version()}, PostgreSQL at {admin.host}")  # fmt: skip
    print("data: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print(f"load (COPY + VACUUM ANALYZE): {load_s:.0f} s")
    print()
    print("| measurement | median of runs |")
    print("|---|---|")
    for k, v in results:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
