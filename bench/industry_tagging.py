"""How many real patents get an SEI industry tag, which ones, and how often rightly.

    .venv/bin/python bench/industry_tagging.py [--data ../shared/data]
    .venv/bin/python bench/industry_tagging.py --write-sample /tmp/industry_sample.tsv
    .venv/bin/python bench/industry_tagging.py --smoke

Prints the tagged share of the lxingy3 titles (IPC subclasses only) and of the incoPat
sample (full IPC codes), tags per industry and branch, which path fired (full code,
whole subclass, subclass + specific term), and the precision of the hand-judged spot
check in bench/data/industry_precision.tsv with a 95 % Wilson interval (method:
bench/data/industry_precision.md). --write-sample writes the seeded sample to judge.
--smoke runs on the demo pool shipped in the repo (no ../shared needed).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.catalog.domain.industry import Hit, branches, explain  # noqa: E402

JUDGED = ROOT / "bench" / "data" / "industry_precision.tsv"
DEMO = ROOT / "services" / "catalog" / "demo" / "demo_patents.jsonl"
SEED = 20261127
FIELDS = [
    "source",
    "id",
    "title",
    "ipc",
    "branch",
    "branch_name",
    "code",
    "path",
    "term",
    "verdict",
]


@dataclass(frozen=True)
class Record:
    source: str
    id: str
    title: str
    text: str
    ipc: list[str]


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def lxingy3(data: Path) -> list[Record]:
    out = []
    for r in _jsonl(data / "cn-patent-titles-ipc-lxingy3" / "patents_clean.jsonl"):
        pubs = r.get("publication_numbers") or ["?"]
        out.append(
            Record("lxingy3", str(pubs[0]), str(r["title"]), str(r["title"]), list(r["ipc"]))
        )
    return out


def full_text(r: dict[str, Any], claims_key: str) -> str:
    return " ".join(str(r.get(k) or "") for k in ("title", "abstract", claims_key))


def incopat(data: Path) -> list[Record]:
    return [
        Record(
            "incopat",
            str(r["application_number"]),
            str(r["title"]),
            full_text(r, "first_claim"),
            list(r["ipc"]),
        )
        for r in _jsonl(data / "cn-patents-incopat-style-sample" / "patents_clean.jsonl")
    ]


def demo() -> list[Record]:
    return [
        Record(
            "demo",
            str(r["application_number"]),
            str(r["title"]),
            full_text(r, "claims"),
            list(r.get("ipc_codes") or []),
        )
        for r in _jsonl(DEMO)
        if r.get("ipc_codes")
    ]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def pairs(rec: Record, hits: list[Hit]) -> dict[str, Hit]:
    """One judged unit per (patent, branch): the first rule hit that gave the branch."""
    first: dict[str, Hit] = {}
    for h in hits:
        first.setdefault(h.branch_no, h)
    return first


def report(name: str, records: list[Record]) -> dict[str, dict[str, Hit]]:
    tagged: dict[str, dict[str, Hit]] = {}
    basis: Counter[str] = Counter()
    for rec in records:
        got = pairs(rec, explain(rec.ipc, rec.text))
        if got:
            tagged[rec.id] = got
            basis.update(h.basis for h in got.values())
    n = len(records)
    share = len(tagged) / n if n else 0.0
    print(f"tagged share, {name}: {len(tagged)} / {n} = {share:.1%}")
    print(f"  tags by path ({name}): " + ", ".join(f"{k} {v}" for k, v in sorted(basis.items())))
    return tagged


def per_industry(name: str, tagged: dict[str, dict[str, Hit]]) -> None:
    by_branch: Counter[str] = Counter(b for got in tagged.values() for b in got)
    by_industry: Counter[str] = Counter(
        i for got in tagged.values() for i in {b.split(".")[0] for b in got}
    )
    print(f"\n| industry ({name}) | patents | branches (patents) |")
    print("|---|---:|---|")
    for ind in sorted({b.industry_no for b in branches()}, key=int):
        names = [b for b in branches() if b.industry_no == ind]
        cells = ", ".join(f"{b.branch_no} {by_branch[b.branch_no]}" for b in names)
        print(f"| {ind} {names[0].industry_name} | {by_industry[ind]} | {cells} |")


def write_sample(
    path: Path, size: int, sets: list[tuple[list[Record], dict[str, dict[str, Hit]]]]
) -> None:
    names = {b.branch_no: b.branch_name for b in branches()}
    rows = []
    rng = random.Random(SEED)
    for records, tagged in sets:
        chosen = [r for r in records if r.id in tagged]
        if len(chosen) > size:
            chosen = rng.sample(chosen, size)
        for rec in chosen:
            for branch_no, hit in sorted(tagged[rec.id].items()):
                rows.append(
                    {
                        "source": rec.source, "id": rec.id, "title": rec.title,
                        "ipc": " ".join(rec.ipc), "branch": branch_no,
                        "branch_name": names[branch_no], "code": hit.code,
                        "path": hit.basis, "term": hit.term or "", "verdict": "",
                    }
                )  # fmt: skip
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, FIELDS, delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    print(f"\nwrote {len(rows)} (patent, branch) pairs to judge -> {path}")


def precision(current: dict[str, dict[str, dict[str, Hit]]]) -> None:
    if not JUDGED.exists():
        print("\nno judgements yet:", JUDGED)
        return
    with open(JUDGED, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    print(f"\nprecision spot check ({JUDGED.relative_to(ROOT)}; 1 = the branch fits the patent)")
    print("| set | judged pairs | correct | precision | 95 % Wilson interval | no longer tagged |")
    print("|---|---:|---:|---:|---|---:|")

    def path(r: dict[str, str]) -> str:  # the path that fires today, if any
        hit = current.get(r["source"], {}).get(r["id"], {}).get(r["branch"])
        return hit.basis if hit else r["path"]

    groups = sorted({r["source"] for r in rows}) + sorted({path(r) for r in rows}) + ["all"]
    for source in groups:
        mine = [r for r in rows if source in ("all", r["source"], path(r))]
        live = [
            r for r in mine
            if r["branch"] in current.get(r["source"], {}).get(r["id"], {})
        ] if current else mine  # fmt: skip
        k = sum(r["verdict"] == "1" for r in live)
        lo, hi = wilson(k, len(live))
        p = k / len(live) if live else 0.0
        stale = len(mine) - len(live)
        print(f"| {source} | {len(live)} | {k} | {p:.1%} | [{lo:.1%}, {hi:.1%}] | {stale} |")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--smoke", action="store_true", help="the repo's demo pool only")
    ap.add_argument("--write-sample", type=Path)
    ap.add_argument("--sample-size", type=int, default=60)
    args = ap.parse_args()
    if args.smoke:
        recs = demo()
        per_industry("demo pool", report("demo pool (records with IPC)", recs))
        print("\n(--smoke: the judgements as stored, not re-checked against today's rules)")
        precision({})
        return
    data = Path(args.data)
    lx, inc = lxingy3(data), incopat(data)
    tagged_lx = report("lxingy3 titles (IPC subclasses)", lx)
    tagged_inc = report("incoPat sample (full IPC, title+abstract+claim)", inc)
    per_industry("lxingy3", tagged_lx)
    per_industry("incoPat", tagged_inc)
    if args.write_sample:
        write_sample(args.write_sample, args.sample_size, [(lx, tagged_lx), (inc, tagged_inc)])
    precision({"lxingy3": tagged_lx, "incopat": tagged_inc})


if __name__ == "__main__":
    main()
