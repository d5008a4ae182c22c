"""`tjp-upload`: a university uploads a CSV/XLSX/JSON/NDJSON file of patents.

    tjp-upload patents.xlsx --key tjp_... [--url http://127.0.0.1:8101] [--report report.csv]

Large files run as a job on the server; the client shows its progress, then prints the
summary and writes the per-record report (rejected rows with field and reason) to CSV.
Network failures are retried with the same Idempotency-Key, so a retry never applies
the file twice; running the command again is a new upload (unchanged rows say so).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from shared.exports import safe_row

CONTENT_TYPES = {
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".json": "application/json",
    ".ndjson": "application/x-ndjson",
    ".jsonl": "application/x-ndjson",
}


def upload(path: Path, url: str, key: str, poll: float = 0.5) -> dict[str, Any]:
    data = path.read_bytes()
    ctype = CONTENT_TYPES.get(path.suffix.lower())
    if ctype is None:
        raise SystemExit(f"unknown file type {path.suffix}; use {', '.join(CONTENT_TYPES)}")
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": ctype,
        "Idempotency-Key": uuid.uuid4().hex,
    }
    with httpx.Client(base_url=url, timeout=httpx.Timeout(600, connect=10)) as client:
        for attempt in range(4):
            try:
                r = client.post("/v1/patents/bulk", content=data, headers=headers)
                break
            except httpx.TransportError as exc:
                if attempt == 3:
                    raise SystemExit(f"could not reach {url}: {exc}") from None
                time.sleep(2**attempt)
        if r.status_code >= 400:
            problem = (
                r.json() if r.headers.get("content-type", "").startswith("application/") else {}
            )
            raise SystemExit(f"upload refused ({r.status_code}): {problem.get('detail', r.text)}")
        body = r.json()
        if r.status_code == 200:
            return body
        job = body
        auth = {"Authorization": f"Bearer {key}"}
        with tqdm(total=job["total"], unit="rec", desc=path.name, file=sys.stderr) as bar:
            while True:
                status = client.get(job["poll"], headers=auth).json()
                bar.update(status["processed"] - bar.n)
                if status["status"] in ("done", "failed"):
                    break
                time.sleep(poll)
        if status["status"] == "failed":
            raise SystemExit(f"upload job failed: {status['error']}")
        return client.get(status["report"], headers=auth).json()


def write_report(rows: list[dict[str, Any]], out: Path) -> None:
    with open(out, "w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(
            ["行号 row", "申请号 application_number", "结果 status", "字段 field", "原因 reason"]
        )
        for row in rows:
            errors = row.get("errors") or [{"field": "", "reason": ""}]
            for e in errors:
                w.writerow(
                    safe_row(
                        [
                            row["row"],
                            row.get("application_number") or "",
                            row["status"],
                            e["field"],
                            e["reason"],
                        ]
                    )
                )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="tjp-upload", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("file", type=Path)
    ap.add_argument("--url", default=os.environ.get("TJP_CATALOG_URL", "http://127.0.0.1:8101"))
    ap.add_argument("--key", default=os.environ.get("TJP_API_KEY"), help="or set TJP_API_KEY")
    ap.add_argument("--report", type=Path, default=None, help="per-record report CSV")
    args = ap.parse_args(argv)
    if not args.key:
        raise SystemExit("an API key is needed: --key or TJP_API_KEY")
    result = upload(args.file, args.url, args.key)
    s = result["summary"]
    print(
        f"{args.file.name}: {s['total']} records — accepted {s['accepted']}, "
        f"updated {s['updated']}, unchanged {s['unchanged']}, rejected {s['rejected']}"
    )
    for row in [r for r in result["rows"] if r["status"] == "rejected"][:20]:
        reasons = "; ".join(f"{e['field']}: {e['reason']}" for e in row["errors"])
        print(f"  row {row['row']} {row.get('application_number') or ''}: {reasons}")
    report = args.report or args.file.with_suffix(".report.csv")
    write_report(result["rows"], report)
    print(f"full report: {report}")


if __name__ == "__main__":
    main()
