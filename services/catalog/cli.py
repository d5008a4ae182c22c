"""`tjp-catalog`: create organisations and API keys, load demo data.

tjp-catalog create-org --kind university --name 天津大学 --district nankai --uscc ...
tjp-catalog create-key --org-id 1 --role supplier
tjp-catalog revoke-key KEY_ID
tjp-catalog load-demo [--keys-file var/demo-keys.json] [--people-file var/demo-people.json]
tjp-catalog load-demo-people --people-file var/demo-people.json
tjp-catalog retag-industries   # after the industry rules change (idempotent)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.catalog import schemas
from services.catalog.api.organisations import create_organisation
from services.catalog.domain.keys import issue_key, revoke_key
from services.catalog.main import MIGRATIONS
from services.catalog.models import ApiKey, Organisation
from services.catalog.settings import CatalogSettings
from shared.auth import Role
from shared.db import Database, upgrade


async def create_org_with_key(
    url: str, org: dict[str, Any], role: Role | None, label: str = "cli"
) -> tuple[int, str | None]:
    """Create (or find by name) an organisation and optionally issue it a key."""
    db = Database(url)
    try:
        async with db.sessionmaker() as session, session.begin():
            existing = await session.scalar(
                select(Organisation).where(Organisation.name == org["name"])
            )
            row = existing or await create_organisation(
                session, schemas.OrganisationCreate.model_validate(org)
            )
            key = await issue_key(session, row, role, label) if role else None
            return row.id, key
    finally:
        await db.dispose()


async def _create_key(url: str, org_id: int, role: Role, label: str) -> str:
    db = Database(url)
    try:
        async with db.sessionmaker() as session, session.begin():
            org = await session.get(Organisation, org_id)
            if org is None:
                raise SystemExit(f"organisation {org_id} does not exist")
            return await issue_key(session, org, role, label)
    finally:
        await db.dispose()


async def retag(url: str) -> dict[str, int]:
    from services.catalog.domain.retag import retag_patents

    db = Database(url)
    try:
        async with db.sessionmaker() as session, session.begin():
            result = await retag_patents(session)
    finally:
        await db.dispose()
    return {"checked": result.checked, "changed": result.changed}


async def _revoke(url: str, key_id: str) -> None:
    db = Database(url)
    try:
        async with db.sessionmaker() as session, session.begin():
            key = await session.get(ApiKey, key_id)
            if key is None:
                raise SystemExit(f"key {key_id} does not exist")
            await revoke_key(session, key)
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="tjp-catalog",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--database-url", default=None)
    sub = ap.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("create-org")
    o.add_argument("--kind", required=True)
    o.add_argument("--name", required=True)
    o.add_argument("--uscc")
    o.add_argument("--district")
    o.add_argument("--province")
    o.add_argument("--sme-basis")
    o.add_argument("--role", help="also issue a key with this role")
    k = sub.add_parser("create-key")
    k.add_argument("--org-id", type=int, required=True)
    k.add_argument("--role", required=True, choices=[r.value for r in Role])
    k.add_argument("--label", default="cli")
    r = sub.add_parser("revoke-key")
    r.add_argument("key_id")
    d = sub.add_parser("load-demo")
    d.add_argument("--limit", type=int, default=None)
    d.add_argument("--keys-file", default=None, help="write the demo API keys here")
    d.add_argument("--people-file", default=None, help="write the demo sign-ins here")
    dp = sub.add_parser("load-demo-people", help="only the demo people (idempotent)")
    dp.add_argument("--people-file", default=None, help="write the demo sign-ins here")
    sub.add_parser("retag-industries", help="recompute stored industry tags (idempotent)")
    args = ap.parse_args(argv)
    url = args.database_url or CatalogSettings().database_url
    upgrade(MIGRATIONS, url)
    try:
        if args.cmd == "create-org":
            body = {
                "kind": args.kind,
                "name": args.name,
                "uscc": args.uscc,
                "district": args.district,
                "province": args.province,
                "is_sme": bool(args.sme_basis),
                "sme_basis": args.sme_basis,
            }
            org_id, key = asyncio.run(
                create_org_with_key(url, body, Role(args.role) if args.role else None)
            )
            print(json.dumps({"org_id": org_id, "key": key}, ensure_ascii=False))
        elif args.cmd == "create-key":
            print(asyncio.run(_create_key(url, args.org_id, Role(args.role), args.label)))
        elif args.cmd == "revoke-key":
            asyncio.run(_revoke(url, args.key_id))
            print(f"revoked {args.key_id}")
        elif args.cmd == "load-demo":
            from services.catalog.demo.load import load_demo

            keys_file = Path(args.keys_file) if args.keys_file else None
            people_file = Path(args.people_file) if args.people_file else None
            result = asyncio.run(
                load_demo(url, limit=args.limit, keys_file=keys_file, people_file=people_file)
            )
            print(json.dumps(result, ensure_ascii=False))
        elif args.cmd == "load-demo-people":
            from services.catalog.demo.load import load_demo_people

            people_file = Path(args.people_file) if args.people_file else None
            sign_ins = asyncio.run(load_demo_people(url, people_file))
            print(json.dumps({"people": len(sign_ins)}, ensure_ascii=False))
        elif args.cmd == "retag-industries":
            print(json.dumps(asyncio.run(retag(url))))
    except ValueError as exc:  # pydantic validation of CLI input
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
