"""Write the judging pool: for each judged need, the union of the top 10 of several methods.

    .venv/bin/python -m bench.matching.pool > bench/results/pool.txt

The output (need text + candidate titles and abstract heads) is for the judges' eyes only
and is not committed (bench/results/ is ignored).
"""

from __future__ import annotations

import argparse
import sys

from bench.matching.corpus import judged_needs, load_docs, load_needs
from bench.matching.judgements import load_judgements
from bench.matching.methods import BM25, Matcher, variants


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--needs", type=int, default=48)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--only-new", action="store_true", help="skip (need, doc) already judged")
    args = ap.parse_args()
    docs = load_docs()
    by_id = {d.id: d for d in docs}
    needs = load_needs()
    cfgs = variants()
    methods = [Matcher(docs, cfgs["matcher"]), Matcher(docs, cfgs["matcher-no-bigrams"], "nb")]
    methods += [BM25(docs), BM25(docs, strip=False)]
    judged = load_judgements() if args.only_new else {}
    out = sys.stdout
    for nid in judged_needs(args.needs):
        need = needs[nid]
        pool: dict[str, list[str]] = {}
        for m in methods:
            for did, _ in m.rank(need, args.depth):
                pool.setdefault(did, []).append(m.name)
        todo = [d for d in pool if d not in judged.get(nid, {})]
        if not todo:
            continue
        out.write(f"\n### {nid} {need.title}\n{need.description[:400]}\n")
        for did in todo:
            d = by_id[did]
            out.write(f"  {did} | {d.title} | {d.abstract[:90].replace(chr(10), ' ')}\n")


if __name__ == "__main__":
    main()
