"""Calibrate the confidence bands (services/matching/domain/confidence.py) on judged needs.

    .venv/bin/python -m bench.matching.calibrate          # thresholds from tune, check on test

For every need of a split (all of them, including needs with no relevant document: an SME
with such a need must see "no strong match"), the matcher's judged top-10 hits give
(score, relevant) pairs. On the tune split the strong threshold is the lowest score above
which at least half the hits were relevant (grade ≥ 1), the possible threshold the lowest
score above which hits between it and the strong threshold were relevant at least one time
in six. The test split then shows how the shipped thresholds hold.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.matching.corpus import dev_need_ids, load_docs, load_needs
from bench.matching.evaluate import split
from bench.matching.judgements import load_judgements
from bench.matching.methods import Matcher
from services.matching.domain import confidence


def pairs(m: Matcher, needs: dict, judg: dict, ids: list[str]) -> np.ndarray:
    out = []
    for nid in ids:
        for did, score in m.rank(needs[nid], 10):
            if did in judg[nid]:
                out.append((score, judg[nid][did] > 0))
    return np.asarray(out, dtype=float).reshape(-1, 2)


def threshold(sp: np.ndarray, precision: float, below: float = np.inf, min_hits: int = 15) -> float:
    """Lowest score s with precision >= `precision` over the hits in [s, below)."""
    cand = np.sort(np.unique(np.round(sp[:, 0], 3)))
    best = below
    for s in cand[::-1]:
        sel = (sp[:, 0] >= s) & (sp[:, 0] < below)
        if sel.sum() >= min_hits and sp[sel, 1].mean() >= precision:
            best = float(s)
    return best


def describe(sp: np.ndarray, strong: float, possible: float) -> None:
    bands = {
        "strong": sp[:, 0] >= strong,
        "possible": (sp[:, 0] >= possible) & (sp[:, 0] < strong),
        "weak": sp[:, 0] < possible,
    }
    print("| band | hits | relevant (grade ≥ 1) |")
    print("|---|---|---|")
    for name, sel in bands.items():
        share = sp[sel, 1].mean() if sel.any() else float("nan")
        print(f"| {name} | {int(sel.sum())} | {share:.0%} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="20 needs, 1,000 documents (CI)")
    args = ap.parse_args()
    judg = load_judgements()
    order = [n for n in dev_need_ids() if n in judg]
    docs = load_docs()
    if args.smoke:
        order = order[:20]
        keep = {d for n in order for d in judg[n]}
        docs = [d for d in docs if d.id in keep] + [d for d in docs if d.id not in keep][:1000]
    needs = load_needs()
    m = Matcher(docs)
    tune = pairs(m, needs, judg, split(order, "tune"))
    strong = threshold(tune, 0.5)
    possible = threshold(tune, 1 / 6, below=strong)
    print(
        f"tune: {len(tune)} judged top-10 hits; strong from {strong:.3f}, possible from {possible:.3f}"
    )
    print(
        f"shipped: strong from {confidence.STRONG_FROM}, possible from {confidence.POSSIBLE_FROM}"
    )
    print("\n### tune split, shipped thresholds")
    describe(tune, confidence.STRONG_FROM, confidence.POSSIBLE_FROM)
    test = pairs(m, needs, judg, split(order, "test"))
    print(f"\n### test split ({len(test)} judged top-10 hits), shipped thresholds")
    describe(test, confidence.STRONG_FROM, confidence.POSSIBLE_FROM)


if __name__ == "__main__":
    main()
