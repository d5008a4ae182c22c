"""In-process benchmark at 10k / 100k / 1M patents, with bm25s as the yardstick.

    .venv/bin/python -m bench.matching.perf --docs 10000 100000
    .venv/bin/python -m bench.matching.perf --docs 1000000 --no-bm25   # the big run

Documents are SYNTHETIC: real titles and abstract sentences (BDCI 2022 patents + zhibei
technology offers from ../shared/data) recombined at random (title of one document,
abstract sentences of three others), so vocabulary and lengths are realistic but the
texts are not real patents. Queries are 200 real need statements (dev needs).
Each size runs in its own process so peak memory (ru_maxrss) is per size.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np

from bench.matching.corpus import dev_need_ids, load_docs, load_needs

SENT = re.compile(r"(?<=[。；;！？])")


def synthetic(n: int, seed: int = 7) -> Iterator[tuple[str, str]]:
    docs = load_docs()
    titles = [d.title for d in docs if d.title]
    sents = [s for d in docs for s in SENT.split(d.abstract) if len(s) > 8]
    rng = random.Random(seed)
    for _ in range(n):
        k = rng.randint(2, 5)
        yield rng.choice(titles), "".join(rng.choice(sents) for _ in range(k))


def _analyse(batch: list[tuple[str, str]]) -> list[tuple[dict[str, float], list[str]]]:
    from services.matching.domain.text import AnalyzerConfig, analyse_patent, terms

    words = AnalyzerConfig(bigrams="none")
    return [(analyse_patent(t, a), terms(t, words) + terms(a, words)) for t, a in batch]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs), p))


def run_size(n: int, bm25: bool, workers: int) -> dict:
    from services.matching.domain.index import Attrs, MatchIndex
    from services.matching.domain.text import analyse_query

    out: dict = {"docs": n}
    docs = list(synthetic(n))
    chars = sum(len(t) + len(a) for t, a in docs)
    out["chars"] = chars
    tokens: list[list[str]] = []
    t0 = time.perf_counter()
    batches = [docs[i : i + 2000] for i in range(0, n, 2000)]
    del docs

    def stream() -> Iterator[tuple[int, dict[str, float], Attrs]]:
        key = 0
        with mp.get_context("fork").Pool(workers) as pool:
            for res in pool.imap(_analyse, batches):
                for bag, toks in res:
                    if bm25:
                        tokens.append(toks)
                    yield key, bag, Attrs(pooled=key % 10 != 0)
                    key += 1

    idx = MatchIndex()
    idx.build(stream())
    out["build_s"] = round(time.perf_counter() - t0, 1)
    out["build_peak_rss_mb"] = round(rss_mb())
    st = idx.stats()
    out["terms"], out["postings"] = st["terms"], st["postings"]
    needs = load_needs()
    qs = [needs[i] for i in dev_need_ids()[:200]]
    bags = [analyse_query(q.description, q.title) for q in qs]
    for b in bags[:20]:
        idx.search(b, 10)
    lat = []
    for b in bags:
        t = time.perf_counter()
        idx.search(b, 10)
        lat.append((time.perf_counter() - t) * 1000)
    out["matcher_p50_ms"], out["matcher_p99_ms"] = round(pct(lat, 50), 2), round(pct(lat, 99), 2)
    lat = []
    for b in bags:
        t = time.perf_counter()
        idx.search(b, 10, explain=0)
        lat.append((time.perf_counter() - t) * 1000)
    out["matcher_noexplain_p50_ms"] = round(pct(lat, 50), 2)
    out["matcher_noexplain_p99_ms"] = round(pct(lat, 99), 2)
    # Incremental: one upload into the built index, then matchable.
    t = time.perf_counter()
    idx.upsert_many([(n + 1, bags[0], Attrs(pooled=True))])
    out["upsert_one_ms"] = round((time.perf_counter() - t) * 1000, 2)
    if bm25:
        import bm25s

        t = time.perf_counter()
        r = bm25s.BM25()
        r.index(tokens, show_progress=False)
        out["bm25_build_s"] = round(time.perf_counter() - t, 1)
        vocab = r.vocab_dict
        qtok = [[w for w in b if not w.startswith("~") and w in vocab] for b in bags]
        qtok = [q for q in qtok if q]
        for q in qtok[:20]:
            r.retrieve([q], k=10, show_progress=False, n_threads=1)
        lat = []
        for q in qtok:
            t = time.perf_counter()
            r.retrieve([q], k=10, show_progress=False, n_threads=1)
            lat.append((time.perf_counter() - t) * 1000)
        out["bm25_p50_ms"], out["bm25_p99_ms"] = round(pct(lat, 50), 2), round(pct(lat, 99), 2)
        out["peak_rss_with_bm25_mb"] = round(rss_mb())
    return out


def segmentation_rates(n: int = 20_000) -> dict:
    import jieba
    import rjieba

    jieba.setLogLevel(60)
    jieba.initialize()
    texts = [t + a for t, a in synthetic(n, seed=3)]
    chars = sum(map(len, texts))
    res = {}
    for name, cut in (("jieba", jieba.lcut), ("rjieba", rjieba.cut)):
        t = time.perf_counter()
        for x in texts:
            cut(x)
        res[f"{name}_mchars_per_s"] = round(chars / (time.perf_counter() - t) / 1e6, 2)
    from services.matching.domain.text import analyse_patent

    t = time.perf_counter()
    for x in texts:
        analyse_patent(x[:30], x[30:])
    res["full_analysis_mchars_per_s_1core"] = round(chars / (time.perf_counter() - t) / 1e6, 2)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--no-bm25", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_size(args.one, not args.no_bm25, args.workers)))
        return
    print("segmentation (1 core):", json.dumps(segmentation_rates()), flush=True)
    for n in args.docs:
        cmd = [sys.executable, "-m", "bench.matching.perf", "--one", str(n)]
        cmd += ["--workers", str(args.workers)] + (["--no-bm25"] if args.no_bm25 else [])
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            print(res.stderr[-2000:])
            continue
        print(res.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
