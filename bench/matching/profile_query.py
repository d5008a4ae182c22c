"""Where a query's time goes at N synthetic patents: the ranking's parts switched on one by
one on the same index, same queries, one process (figures in docs/matching.md).

    .venv/bin/python -m bench.matching.profile_query --docs 100000
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from bench.matching.corpus import dev_need_ids, load_needs
from bench.matching.perf import synthetic


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from services.matching.domain.index import Attrs, MatchIndex
    from services.matching.domain.text import analyse_patent, analyse_query

    idx = MatchIndex()
    t0 = time.perf_counter()
    idx.build(
        (i, analyse_patent(t, a), Attrs(pooled=True))
        for i, (t, a) in enumerate(synthetic(args.docs))
    )
    needs = load_needs()
    bags = [analyse_query(needs[n].description, needs[n].title) for n in dev_need_ids()[:200]]
    out: dict = {"docs": args.docs, "build_s": round(time.perf_counter() - t0, 1)}
    t = time.perf_counter()
    for n in dev_need_ids()[:200]:
        analyse_query(needs[n].description, needs[n].title)
    out["analysis_mean_ms"] = round((time.perf_counter() - t) / 200 * 1000, 3)
    variants = {
        "scoring only (no cut-off, no coverage, no explanations)": (0.0, 0.0, 0),
        "+ common-term cut-off (max_df 0.1)": (0.1, 0.0, 0),
        "+ coverage re-scoring of the top 100": (0.1, 0.5, 0),
        "+ explanations (shipped)": (0.1, 0.5, 12),
    }
    for name, (max_df, coverage, explain) in variants.items():
        idx.max_df, idx.coverage = max_df, coverage
        lat: list[float] = []
        for _ in range(args.rounds):
            for b in bags:
                s = time.perf_counter()
                idx.search(b, 10, explain=explain)
                lat.append((time.perf_counter() - s) * 1000)
        a = np.asarray(lat)
        out[name] = {"p50_ms": round(float(np.percentile(a, 50)), 2),
                     "p99_ms": round(float(np.percentile(a, 99)), 2)}  # fmt: skip
        print(name, out[name], flush=True)
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
