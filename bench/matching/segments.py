"""What following uploads costs the matcher's queries: segments appended, then merged.

    .venv/bin/python -m bench.matching.segments                 # 20,000 fitted + 2,000 uploads
    .venv/bin/python -m bench.matching.segments --limits 2,3,6  # other limits too
    .venv/bin/python -m bench.matching.segments --smoke         # 2,000 + 60 (CI)

Each upload of 20 patents appends a segment to the index; a query pays every segment a fixed
cost (column slicing, accumulation, explanations) whatever its size. The mixed load
(bench/load_mix.py) uploads about 18 times and matches about 57 times a second, so this
replays that rhythm in process — one upload, then three queries — on the same synthetic
patents and real need statements, under two merge policies in the same run:

- `whole tail past 12`: the policy before stop 23 (up to 13 segments; past that, every
  segment behind the fitted head merged into one, so the merged rows grow with the tail);
- `newest past 4` (shipped): past 4 segments, the newest two and each older one no bigger
  than those, so a row is merged again only when its segment has about doubled.

Prints, per policy, CPU ms per upload (merges included), per query, and per cycle of one
upload and three queries, the mean segments a query read, and the final segment sizes. The
refit thread (at 20 % growth) runs as in the service; its CPU counts in the cycle figure.
"""

from __future__ import annotations

import argparse
import os
import time

from bench.matching.corpus import dev_need_ids, load_needs
from bench.matching.perf import synthetic
from services.matching.domain import index as index_module
from services.matching.domain.index import Attrs, MatchIndex
from services.matching.domain.text import analyse_patent, analyse_query


class WholeTailIndex(MatchIndex):
    """The merge before stop 23: everything behind the fitted head, into one segment."""

    def _merge_newest(self) -> None:
        self._merge_from(1)


def run(
    kind: type[MatchIndex], max_segments: int, fitted: list, uploads: list, queries: list
) -> dict[str, float | str]:
    index_module.MAX_SEGMENTS = max_segments
    idx = kind()
    idx.build((i, bag, Attrs(pooled=True)) for i, bag in enumerate(fitted))
    upload_cpu = query_cpu = 0.0
    segments_read = 0
    n_queries = 0
    cpu0 = time.process_time()
    for n, batch in enumerate(uploads):
        t = time.thread_time()
        idx.upsert_many(batch)
        upload_cpu += time.thread_time() - t
        for k in range(3):
            q = queries[(3 * n + k) % len(queries)]
            segments_read += len(idx._state.segments)
            t = time.thread_time()
            idx.search(q, 10)
            query_cpu += time.thread_time() - t
            n_queries += 1
    idx.wait_refit()
    total = time.process_time() - cpu0
    return {
        "upload_ms": upload_cpu / len(uploads) * 1000,
        "query_ms": query_cpu / n_queries * 1000,
        "cycle_ms": total / len(uploads) * 1000,
        "segments_per_query": segments_read / n_queries,
        "refits": idx.refits,
        "final_sizes": " ".join(str(s.n) for s in idx._state.segments),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=20_000, help="patents fitted before the uploads")
    ap.add_argument("--uploads", type=int, default=2_000, help="uploads of 20 patents")
    ap.add_argument(
        "--limits", default="", help="also the shipped policy at these limits, e.g. 2,3,6"
    )
    ap.add_argument("--smoke", action="store_true", help="2,000 fitted, 60 uploads")
    args = ap.parse_args()
    if args.smoke:
        args.docs, args.uploads = 2_000, 60
    texts = list(synthetic(args.docs + 20 * args.uploads))
    bags = [analyse_patent(t, a) for t, a in texts]
    fitted = bags[: args.docs]
    uploads = [
        [(args.docs + u * 20 + j, bags[args.docs + u * 20 + j], Attrs(pooled=True))
         for j in range(20)]
        for u in range(args.uploads)
    ]  # fmt: skip
    needs = load_needs()
    queries = [analyse_query(needs[n].description, needs[n].title) for n in dev_need_ids()[:200]]
    load = os.getloadavg()
    print(f"matcher following uploads: {args.docs:,} fitted patents, {args.uploads:,} uploads "
          f"of 20, 3 queries after each; load average {load[0]:.1f} {load[1]:.1f}\n")  # fmt: skip
    print(
        "| merge policy | CPU ms per upload | per query | per upload + 3 queries "
        "(refits included) | segments a query read, mean | refits | segment sizes at the end |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    shipped = index_module.MAX_SEGMENTS
    policies = [("whole tail past 12 (before)", WholeTailIndex, 12),
                (f"newest past {shipped} (shipped)", MatchIndex, shipped)]  # fmt: skip
    for limit in sorted({int(x) for x in args.limits.split(",") if x} - {shipped}):
        policies.append((f"newest past {limit}", MatchIndex, limit))
    try:
        for name, kind, max_segments in policies:
            r = run(kind, max_segments, fitted, uploads, queries)
            print(f"| {name} | {r['upload_ms']:.3f} | {r['query_ms']:.3f} | {r['cycle_ms']:.2f} | "
                  f"{r['segments_per_query']:.1f} | {r['refits']} | {r['final_sizes']} |",
                  flush=True)  # fmt: skip
    finally:
        index_module.MAX_SEGMENTS = shipped


if __name__ == "__main__":
    main()
