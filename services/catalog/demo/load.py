"""Load the demo pool: organisations, accounts, patents and listings (idempotent)."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog import schemas
from services.catalog.api.organisations import create_organisation
from services.catalog.api.people import create_person
from services.catalog.domain.ingest import (
    Prepared,
    ineligibility,
    prepare,
    upsert_batch,
)
from services.catalog.domain.keys import issue_key
from services.catalog.domain.listings import open_listing
from services.catalog.models import Listing, Organisation, Patent, Person
from shared.auth import Role
from shared.db import Database

ACCOUNTS: list[dict[str, Any]] = [
    {"name": "平台管理员", "kind": "other", "district": "heping", "role": "admin"},
    {
        "name": "天津市知识产权局（示例）",
        "kind": "other",
        "district": "hexi",
        "role": "city_bureau",
    },
    {
        "name": "滨海新区知识产权局（示例）",
        "kind": "other",
        "district": "binhai",
        "role": "district_bureau",
    },
    {
        "name": "东丽区知识产权局（示例）",
        "kind": "other",
        "district": "dongli",
        "role": "district_bureau",
    },
    {
        "name": "天津示例新能源科技有限公司",
        "kind": "sme",
        "district": "binhai",
        "role": "sme",
        "sme_basis": "工信部联企业〔2011〕300号：小型企业（示例）",
    },
    {
        "name": "天津示例智能装备有限公司",
        "kind": "sme",
        "district": "xiqing",
        "role": "sme",
        "sme_basis": "科技型中小企业入库（示例）",
    },
    {
        "name": "天津示例生物医药有限公司",
        "kind": "sme",
        "district": "dongli",
        "role": "sme",
        "sme_basis": "工信部联企业〔2011〕300号：微型企业（示例）",
    },
]
SUPPLIER_KEYS = ["天津大学", "南开大学", "天津科技大学"]
# One person per role for signing in to the portal; the password is public on purpose.
DEMO_PASSWORD = "tianjin-demo-2026"
DEMO_PEOPLE: list[dict[str, Any]] = [
    {
        "org": "天津示例新能源科技有限公司",
        "name": "王企业（示例）",
        "email": "sme@tjpatent.example",
        "phone": "13800138001",
        "role": "sme",
    },
    {
        "org": "天津大学",
        "name": "李老师（示例）",
        "email": "tju@tjpatent.example",
        "phone": "13800138002",
        "role": "supplier",
        "org_admin": True,
    },
    {
        "org": "滨海新区知识产权局（示例）",
        "name": "赵科长（示例）",
        "email": "binhai@tjpatent.example",
        "role": "district_bureau",
    },
    {
        "org": "天津市知识产权局（示例）",
        "name": "孙处长（示例）",
        "email": "bureau@tjpatent.example",
        "role": "city_bureau",
    },
    {
        "org": "平台管理员",
        "name": "平台管理员（示例）",
        "email": "admin@tjpatent.example",
        "role": "admin",
        "org_admin": True,
    },
]
UPLOAD_DEMO_OWNER = "天津大学"


def pooled_in_demo(rng: random.Random) -> bool:
    """Whether the demo pools this patent (85 %). Seeded per patent with its normalised
    application number, so a second run makes the same choices (idempotent) and
    scripts/build_demo_sample.py can tell in advance which records end up pooled."""
    return rng.random() <= 0.85


def _read(name: str) -> str:
    return resources.files("services.catalog.demo").joinpath(name).read_text(encoding="utf-8")


def _terms(rng: random.Random) -> schemas.OfferTerms:
    roll = rng.random()
    if roll < 0.15:
        return schemas.OfferTerms(modes=["assignment"], zero_price=True)
    if roll < 0.3:
        return schemas.OfferTerms(
            modes=["non_exclusive_licence", "open_licence"],
            price_cny=rng.choice([5000, 10000, 20000]),
            use_first_pay_later=True,
            deferred_licence_fee=True,
        )
    modes = rng.sample(
        ["assignment", "exclusive_licence", "sole_licence", "non_exclusive_licence", "equity"],
        k=rng.randint(1, 3),
    )
    price = rng.choice([None, 30000, 50000, 100000, 200000, 500000])
    return schemas.OfferTerms(modes=modes, price_cny=price, negotiable=True)


async def add_demo_people(
    session: AsyncSession, by_name: dict[str, Organisation]
) -> list[dict[str, Any]]:
    """Create the demo people that are missing; return every demo sign-in."""
    sign_ins = []
    for spec in DEMO_PEOPLE:
        org = by_name.get(spec["org"])
        if org is None:
            continue
        exists = await session.scalar(select(Person.id).where(Person.email == spec["email"]))
        if exists is None:
            body = {k: v for k, v in spec.items() if k != "org"}
            await create_person(
                session, org.id, schemas.PersonCreate(**body, password=DEMO_PASSWORD)
            )
        sign_ins.append(
            {
                "role": spec["role"],
                "login": spec["email"],
                "password": DEMO_PASSWORD,
                "name": spec["name"],
                "organisation": org.name,
                "org_admin": spec.get("org_admin", False),
            }
        )
    return sign_ins


def write_people_file(people_file: Path, sign_ins: list[dict[str, Any]]) -> None:
    people_file.parent.mkdir(parents=True, exist_ok=True)
    people_file.write_text(json.dumps(sign_ins, ensure_ascii=False, indent=1), encoding="utf-8")


async def load_demo_people(url: str, people_file: Path | None = None) -> list[dict[str, Any]]:
    """Only the demo people (for a var/ made before people existed). Idempotent."""
    db = Database(url)
    try:
        async with db.sessionmaker() as session, session.begin():
            orgs = (await session.scalars(select(Organisation))).all()
            sign_ins = await add_demo_people(session, {o.name: o for o in orgs})
    finally:
        await db.dispose()
    if people_file:
        write_people_file(people_file, sign_ins)
    return sign_ins


async def load_demo(
    url: str,
    *,
    limit: int | None = None,
    keys_file: Path | None = None,
    people_file: Path | None = None,
) -> dict[str, Any]:
    db = Database(url)
    summary: dict[str, Any] = {}
    keys: dict[str, str] = {}
    try:
        async with db.sessionmaker() as session, session.begin():
            by_name: dict[str, Organisation] = {
                o.name: o for o in (await session.scalars(select(Organisation))).all()
            }
            fresh = not by_name
            for acc in ACCOUNTS:
                if acc["name"] not in by_name:
                    body = {k: v for k, v in acc.items() if k != "role"}
                    by_name[acc["name"]] = await create_organisation(
                        session, schemas.OrganisationCreate.model_validate(body)
                    )
            for org in json.loads(_read("demo_organisations.json")):
                if org["name"] not in by_name:
                    by_name[org["name"]] = await create_organisation(
                        session, schemas.OrganisationCreate.model_validate(org)
                    )
            if fresh:
                for acc in ACCOUNTS:
                    keys[acc["name"]] = await issue_key(
                        session, by_name[acc["name"]], Role(acc["role"]), "demo"
                    )
                for name in SUPPLIER_KEYS:
                    if name in by_name:
                        keys[name] = await issue_key(session, by_name[name], Role.SUPPLIER, "demo")
            sign_ins = await add_demo_people(session, by_name)
            # 天津大学's records are left out: they are the demo CSV a university uploads itself.
            records = [
                r
                for r in map(json.loads, _read("demo_patents.jsonl").splitlines())
                if r["patentees"] != [UPLOAD_DEMO_OWNER]
            ]
            records = records[:limit] if limit else records
            grouped: dict[str, list[tuple[int, Prepared]]] = defaultdict(list)
            for i, rec in enumerate(records):
                body = {k: v for k, v in rec.items() if k not in ("source", "generated")}
                grouped[rec["patentees"][0]].append(
                    (i, prepare(schemas.PatentIn.model_validate(body)))
                )
            counts: dict[str, int] = defaultdict(int)
            for name, items in grouped.items():
                for outcome in await upsert_batch(session, by_name[name], items):
                    counts[outcome.status] += 1
            summary["patents"] = dict(counts)
            listed = 0
            patents = (await session.scalars(select(Patent).order_by(Patent.id))).all()
            have = set((await session.scalars(select(Listing.patent_id))).all())
            for p in patents:
                rng = random.Random(p.application_number)
                if p.id in have or not pooled_in_demo(rng):
                    continue
                if await ineligibility(session, p):
                    continue
                owner = next(o for o in by_name.values() if o.name in p.patentees)
                # Demo history: pooled on a (fictional) day of the city plan, 2021-2023.
                listed_at = datetime(2021, 1, 4, 9, tzinfo=UTC) + timedelta(
                    days=rng.randrange(0, 3 * 365 - 5)
                )
                await open_listing(
                    session,
                    patent_id=p.id,
                    org_id=owner.id,
                    terms=_terms(rng),
                    at=listed_at,
                    reason="demo",
                )
                listed += 1
            summary["listings_created"] = listed
            summary["organisations"] = len(by_name)
    finally:
        await db.dispose()
    if keys and keys_file:
        keys_file.parent.mkdir(parents=True, exist_ok=True)
        keys_file.write_text(json.dumps(keys, ensure_ascii=False, indent=1), encoding="utf-8")
        summary["keys_file"] = str(keys_file)
    elif keys:
        summary["keys"] = keys
    summary["people"] = len(sign_ins)
    if people_file:
        write_people_file(people_file, sign_ins)
        summary["people_file"] = str(people_file)
    return summary
