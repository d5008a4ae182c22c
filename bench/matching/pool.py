"""Write the judging pool: for each judged need, the union of the top 10 of several rankers.

    .venv/bin/python -m bench.matching.pool --out bench/results/pool --batches 4

Rankers pooled: the character n-gram TF-IDF baseline, word TF-IDF, BM25 and the matcher
(plus any extra named with --with). Candidates are listed in document-id order, so an
assessor cannot tell which ranker found them. Pairs already in judgements.tsv are skipped.
The output (need text + candidate titles and abstract heads) is for the assessors' eyes
only and is not committed (bench/results/ is ignored).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.matching.corpus import Doc, Need, dev_need_ids, load_docs, load_needs
from bench.matching.judgements import load_judgements
from bench.matching.methods import BM25, Matcher, SklearnTfidf


def need_block(nid: str, need: Need, todo: list[str], by_id: dict[str, Doc]) -> str:
    """One need and its candidates, as the assessors read them (no ranker names)."""
    lines = [f"\n### {nid}\n标题: {need.title}\n描述: {need.description[:600]}\n候选:"]
    for did in todo:
        d = by_id[did]
        lines.append(f"- {did} | {d.title} | {d.abstract[:130].replace(chr(10), ' ')}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--needs", type=int, default=300)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path("bench/results/pool"))
    args = ap.parse_args()
    docs = load_docs()
    by_id = {d.id: d for d in docs}
    needs = load_needs()
    methods = [SklearnTfidf(docs, "char"), SklearnTfidf(docs, "word"), BM25(docs), Matcher(docs)]
    judged = load_judgements()
    blocks: list[tuple[int, str]] = []
    for nid in dev_need_ids()[: args.needs]:
        need = needs[nid]
        pool: set[str] = set()
        for m in methods:
            pool.update(did for did, _ in m.rank(need, args.depth))
        todo = sorted(d for d in pool if d not in judged.get(nid, {}))
        if not todo:
            continue
        blocks.append((len(todo), need_block(nid, need, todo, by_id)))
    args.out.mkdir(parents=True, exist_ok=True)
    total = sum(n for n, _ in blocks)
    per = total / args.batches
    batch, acc = 0, 0
    files = [
        (args.out / f"batch-{i + 1}.txt").open("w", encoding="utf-8") for i in range(args.batches)
    ]
    for n, text in blocks:
        if acc >= per * (batch + 1) and batch < args.batches - 1:
            batch += 1
        files[batch].write(text)
        acc += n
    for f in files:
        f.close()
    print(
        f"{len(blocks)} needs, {total} pairs to judge, in {args.batches} batches under {args.out}"
    )


if __name__ == "__main__":
    main()
