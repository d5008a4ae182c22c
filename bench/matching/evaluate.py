"""Offline evaluation: nDCG@10, Recall@50, MRR of the matcher and BM25 in one run.

    .venv/bin/python -m bench.matching.evaluate            # tune/test split, all methods
    .venv/bin/python -m bench.matching.evaluate --split all

Reads texts from ../shared/data at run time; judgements from bench/matching/judgements.tsv.
Needs are split deterministically: every third judged need (positions 0, 3, 6 ...) is in the
tuning split, the rest in the test split. Needs without any relevant document are left
out of the averages (their metrics are undefined); the counts are printed.
"""

from __future__ import annotations

import argparse
import time
from statistics import mean

from bench.matching.corpus import load_docs, load_needs
from bench.matching.judgements import load_judgements
from bench.matching.methods import BM25, Matcher, mrr, ndcg, recall, variants


def split(need_ids: list[str], which: str) -> list[str]:
    if which == "all":
        return need_ids
    tune = [n for i, n in enumerate(need_ids) if i % 3 == 0]
    return tune if which == "tune" else [n for n in need_ids if n not in tune]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=["tune", "test", "all", "both"], default="both")
    args = ap.parse_args()
    judg = load_judgements()
    order = list(judg)
    docs = load_docs()
    needs = load_needs()
    t0 = time.perf_counter()
    methods = [Matcher(docs, cfg, name) for name, cfg in variants().items()]
    methods += [BM25(docs), BM25(docs, strip=False)]
    print(
        f"corpus: {len(docs)} documents; built {len(methods)} rankers in "
        f"{time.perf_counter() - t0:.1f}s"
    )
    splits = ["tune", "test"] if args.split == "both" else [args.split]
    for which in splits:
        ids = [n for n in split(order, which) if any(g > 0 for g in judg[n].values())]
        total = len(split(order, which))
        print(f"\n## split={which}: {len(ids)} needs with a relevant document (of {total} judged)")
        print("| method | nDCG@10 | Recall@50 | MRR | judged@10 |")
        print("|---|---|---|---|---|")
        for m in methods:
            nd, rc, rr, cov = [], [], [], []
            for nid in ids:
                ranked = [d for d, _ in m.rank(needs[nid], 50)]
                g = judg[nid]
                nd.append(ndcg(ranked, g, 10))
                rc.append(recall(ranked, g, 50))
                rr.append(mrr(ranked, g))
                cov.append(sum(d in g for d in ranked[:10]) / max(1, min(10, len(ranked))))
            print(
                f"| {m.name} | {mean(nd):.3f} | {mean(rc):.3f} | {mean(rr):.3f} | {mean(cov):.2f} |"
            )


if __name__ == "__main__":
    main()
