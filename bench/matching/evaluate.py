"""Offline evaluation: the matcher against the plain baselines, with intervals.

    .venv/bin/python -m bench.matching.evaluate                 # test split, every ranker
    .venv/bin/python -m bench.matching.evaluate --split tune
    .venv/bin/python -m bench.matching.evaluate --smoke         # tiny run for CI

Reads texts from ../shared/data at run time and grades from bench/matching/judgements.tsv.
The split is fixed by position in `dev_needs.txt`: positions 0, 3, 6, ... tune, every other
need is test. Needs without a relevant judged document are left out (their metrics are
undefined); the counts are printed. Intervals: 95 % percentile bootstrap over needs
(2,000 resamples, fixed seed); the paired difference resamples the same needs for both
rankers.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench.matching.corpus import dev_need_ids, load_docs, load_needs
from bench.matching.judgements import PATH, load_judgements
from bench.matching.methods import BM25, Matcher, SklearnTfidf, mrr, ndcg, recall
from services.matching.domain.text import AnalyzerConfig

BASELINE = "char-ngram-tfidf"
METRICS: dict[str, Callable[[list[str], dict[str, int]], float]] = {
    "nDCG@10": lambda r, g: ndcg(r, g, 10),
    "Recall@50": lambda r, g: recall(r, g, 50),
    "MRR@10": lambda r, g: mrr(r[:10], g),
}


def split(need_ids: Sequence[str], which: str) -> list[str]:
    if which == "all":
        return list(need_ids)
    tune = [n for i, n in enumerate(need_ids) if i % 3 == 0]
    return tune if which == "tune" else [n for i, n in enumerate(need_ids) if i % 3 != 0]


def bootstrap(values: np.ndarray, n: int = 2000, seed: int = 7) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n, len(values)))
    means = values[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def build_rankers(docs: list, names: set[str] | None = None) -> list:
    before = AnalyzerConfig(bigrams="words", bigram_weight=0.3, single_chars=True, headline=False)
    makers: dict[str, Callable[[], object]] = {
        "matcher": lambda: Matcher(docs),
        "previous matcher": lambda: Matcher(
            docs, before, "previous matcher (48187aa)", slope=1.0, coverage=0.0, max_df=0.0
        ),
        BASELINE: lambda: SklearnTfidf(docs, "char"),
        "bm25": lambda: BM25(docs),
        "word-tfidf": lambda: SklearnTfidf(docs, "word"),
    }
    out = [make() for name, make in makers.items() if names is None or name in names]
    for m in list(out):
        if (
            isinstance(m, Matcher) and m.name == "matcher"
        ):  # the same index, the need sent as one text to /v1/match
            out.insert(1, m.as_text("matcher (need as one text)"))
    return out


def evaluate(
    rankers: list, needs: dict, judg: dict[str, dict[str, int]], ids: list[str]
) -> dict[str, dict[str, np.ndarray]]:
    """Per ranker, per metric: one value per need (aligned with `ids`), plus judged@10."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for m in rankers:
        rows: dict[str, list[float]] = {k: [] for k in [*METRICS, "judged@10"]}
        for nid in ids:
            ranked = [d for d, _ in m.rank(needs[nid], 50)]
            g = judg[nid]
            for k, f in METRICS.items():
                rows[k].append(f(ranked, g))
            rows["judged@10"].append(
                sum(d in g for d in ranked[:10]) / max(1, min(10, len(ranked)))
            )
        out[m.name] = {k: np.asarray(v) for k, v in rows.items()}
    return out


def report(res: dict[str, dict[str, np.ndarray]], title: str) -> None:
    print(f"\n## {title}")
    print("| ranker | nDCG@10 (95 % CI) | Recall@50 | MRR@10 | judged@10 |")
    print("|---|---|---|---|---|")
    for name, r in res.items():
        lo, hi = bootstrap(r["nDCG@10"])
        print(
            f"| {name} | {r['nDCG@10'].mean():.3f} ({lo:.3f}–{hi:.3f}) | "
            f"{r['Recall@50'].mean():.3f} | {r['MRR@10'].mean():.3f} | "
            f"{r['judged@10'].mean():.2f} |"
        )
    if BASELINE in res:
        base = res[BASELINE]["nDCG@10"]
        print(f"\nPaired nDCG@10 difference against {BASELINE} (95 % CI; wins/losses/ties):")
        for name, r in res.items():
            if name == BASELINE:
                continue
            d = r["nDCG@10"] - base
            lo, hi = bootstrap(d)
            w, lo_n, t = int((d > 1e-9).sum()), int((d < -1e-9).sum()), int((abs(d) <= 1e-9).sum())
            print(f"- {name}: {d.mean():+.3f} ({lo:+.3f} to {hi:+.3f}); {w}/{lo_n}/{t}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=["tune", "test", "all"], default="test")
    ap.add_argument("--judgements", type=Path, nargs="*", default=[PATH])
    ap.add_argument("--rankers", nargs="*", help="subset of ranker names")
    ap.add_argument("--smoke", action="store_true", help="500 documents, 10 needs (CI)")
    args = ap.parse_args()
    judg: dict[str, dict[str, int]] = {}
    for path in args.judgements:
        for nid, grades in load_judgements(path).items():
            judg.setdefault(nid, {}).update(grades)
    docs = load_docs()
    needs = load_needs()
    order = [n for n in dev_need_ids() if n in judg]
    if args.smoke:
        keep = {d for n in order[:10] for d in judg[n]}
        docs = [d for d in docs if d.id in keep] + [d for d in docs if d.id not in keep][:500]
        order = order[:10]
    t0 = time.perf_counter()
    rankers = build_rankers(docs, set(args.rankers) if args.rankers else None)
    print(
        f"corpus: {len(docs)} documents; built {len(rankers)} rankers in {time.perf_counter() - t0:.1f} s"
    )
    chosen = split(order, "all" if args.smoke else args.split)
    ids = [n for n in chosen if any(g > 0 for g in judg[n].values())]
    res = evaluate(rankers, needs, judg, ids)
    report(
        res,
        f"split={args.split}: {len(ids)} needs with a relevant document (of {len(chosen)} judged)",
    )


if __name__ == "__main__":
    main()
