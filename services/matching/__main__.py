"""Serve matching from `MATCHING_WORKERS` processes (default 2): `python -m services.matching`.

Each worker loads the index snapshot and keeps its own copy current; one leads (follows the
feed, writes snapshots) and the others follow the database (domain/replicas.py). Options
override the settings: `--workers 1 --port 8102 --host 127.0.0.1`. Each worker listens on
its own SO_REUSEPORT socket (services/matching/workers.py).
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from services.matching.settings import MatchingSettings
from services.matching.workers import supervise


def main() -> None:
    settings = MatchingSettings()
    ap = argparse.ArgumentParser(prog="python -m services.matching")
    ap.add_argument("--workers", type=int, default=settings.workers)
    ap.add_argument("--host", default=settings.host)
    ap.add_argument("--port", type=int, default=settings.port)
    ap.add_argument("--log-level", default="warning")
    args = ap.parse_args()
    if args.workers < 1:
        ap.error("--workers must be at least 1")
    # The workers read their settings from the environment: tell them how many they are.
    os.environ["MATCHING_WORKERS"] = str(args.workers)
    if args.workers == 1:
        uvicorn.run(
            "services.matching.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
        )
        return
    supervise(args.host, args.port, args.workers, args.log_level)


if __name__ == "__main__":
    main()
