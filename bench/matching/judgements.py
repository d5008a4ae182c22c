"""Relevance judgements: bench/matching/judgements.tsv (need_id, doc_id, grade)."""

from __future__ import annotations

from pathlib import Path

PATH = Path(__file__).with_name("judgements.tsv")


def load_judgements(path: Path = PATH) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("need_id"):
            continue
        nid, did, grade = line.split("\t")[:3]
        out.setdefault(nid, {})[did] = int(grade)
    return out
