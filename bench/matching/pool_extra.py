"""Second judging round: the current matcher's unjudged top-10 documents.

    .venv/bin/python -m bench.matching.pool_extra --out bench/results/pool-extra

A ranker tuned after the pool was judged puts some unjudged documents in its top 10; they
count as non-relevant until judged, which would bias the comparison against it. This writes
those pairs (both query modes: title + description as fields, and as one text) in the same
blind format as `pool.py`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.matching.corpus import dev_need_ids, load_docs, load_needs
from bench.matching.judgements import load_judgements
from bench.matching.methods import Matcher
from bench.matching.pool import need_block


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench/results/pool-extra"))
    args = ap.parse_args()
    docs = load_docs()
    by_id = {d.id: d for d in docs}
    needs = load_needs()
    judged = load_judgements()
    fields = Matcher(docs)
    as_text = fields.as_text()
    blocks = []
    for nid in dev_need_ids():
        if nid not in judged:
            continue
        need = needs[nid]
        pool = {d for m in (fields, as_text) for d, _ in m.rank(need, args.depth)}
        todo = sorted(d for d in pool if d not in judged[nid])
        if not todo:
            continue
        blocks.append(need_block(nid, need, todo, by_id))
    args.out.mkdir(parents=True, exist_ok=True)
    per = -(-len(blocks) // args.batches)
    for i in range(args.batches):
        (args.out / f"batch-{i + 1}.txt").write_text("".join(blocks[i * per : (i + 1) * per]))
    print(
        f"{len(blocks)} needs with unjudged top-{args.depth} documents, in {args.batches} batches"
    )


if __name__ == "__main__":
    main()
