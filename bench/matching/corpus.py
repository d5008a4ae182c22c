"""Load the real evaluation data from ../shared/data (never copied into the repo).

Documents: CCF BDCI 2022 patents (title + abstract) and zhibei technology offers
(title + description). Needs: zhibei enterprise technology needs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("TJP_SHARED_DATA", ROOT.parent / "shared" / "data"))
PATENTS = DATA / "cn-patents-bdci2022" / "patents_clean.jsonl"
NEEDS_DIR = DATA / "cn-tech-needs-zhibei"


@dataclass(frozen=True)
class Doc:
    id: str
    title: str
    abstract: str
    kind: str  # patent | offer


@dataclass(frozen=True)
class Need:
    id: str
    title: str
    description: str


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_docs() -> list[Doc]:
    docs = [
        Doc(f"bdci:{r['source_id']}", r["title"] or "", r["abstract"] or "", "patent")
        for r in _jsonl(PATENTS)
    ]
    for r in _jsonl(NEEDS_DIR / "tech_achievements_clean.jsonl"):
        text = r["description"] or ""
        if r.get("application_scope"):
            text += "\n" + r["application_scope"]
        docs.append(Doc(r["achievement_id"], r["title"] or "", text, "offer"))
    return docs


def load_needs() -> dict[str, Need]:
    return {
        r["need_id"]: Need(r["need_id"], r["title"] or "", r["description"] or "")
        for r in _jsonl(NEEDS_DIR / "tech_needs_clean.jsonl")
    }


def dev_need_ids() -> list[str]:
    return (NEEDS_DIR / "dev_needs.txt").read_text().split()


def judged_needs(n: int = 48) -> list[str]:
    """The first `n` dev needs in file order that state a problem (description >= 30 chars,
    not an exact re-post of an earlier need)."""
    raw = {r["need_id"]: r for r in _jsonl(NEEDS_DIR / "tech_needs_clean.jsonl")}
    out = []
    for nid in dev_need_ids():
        r = raw[nid]
        if r["duplicate_of"] or len(r["description"] or "") < 30:
            continue
        out.append(nid)
        if len(out) == n:
            break
    return out
