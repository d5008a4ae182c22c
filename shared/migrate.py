"""`python -m shared.migrate <service> [revision]` / `... <service> revision -m msg`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from alembic import command

from shared.db import alembic_config

ROOT = Path(__file__).resolve().parent.parent


def script_location(service: str) -> Path:
    return ROOT / "services" / service / "migrations"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("service", choices=["catalog", "matching", "indicators"])
    ap.add_argument("action", choices=["upgrade", "revision", "current"], default="upgrade")
    ap.add_argument("-m", "--message", default="change")
    ap.add_argument("--url", default=None)
    args = ap.parse_args()
    url = args.url or os.environ.get(f"{args.service.upper()}_DATABASE_URL")
    if not url:
        url = f"sqlite+aiosqlite:///var/{args.service}.db"
    cfg = alembic_config(script_location(args.service), url)
    if args.action == "upgrade":
        command.upgrade(cfg, "head")
    elif args.action == "current":
        command.current(cfg)
    else:
        command.upgrade(cfg, "head")
        command.revision(cfg, message=args.message, autogenerate=True)


if __name__ == "__main__":
    main()
