"""Tuning runs on the tune split only: ranker variants side by side with the baseline.

    .venv/bin/python -m bench.matching.tune [--judgements FILE ...]

Every variant here was measured on the tune third of the judged needs; the chosen one is
what the service ships (its defaults), and only `evaluate` (test split) reports results.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from bench.matching.corpus import dev_need_ids, load_docs, load_needs
from bench.matching.evaluate import BASELINE, evaluate, report, split
from bench.matching.judgements import PATH, load_judgements
from bench.matching.methods import Matcher, SklearnTfidf
from services.matching.domain.text import AnalyzerConfig


def variants(docs: list) -> list:
    """The steps from the previous matcher to the shipped one, and the neighbours tried."""
    base = AnalyzerConfig()
    before = replace(base, bigrams="words", bigram_weight=0.3, single_chars=True, headline=False)
    grid: dict[str, tuple[AnalyzerConfig, dict[str, float]]] = {
        "previous matcher (48187aa)": (
            before,
            {"slope": 1.0, "coverage": 0.0, "max_df": 0.0},
        ),
        "run bigrams 0.6, no lone characters": (
            base,
            {"slope": 1.0, "coverage": 0.0, "max_df": 0.0},
        ),
        "+ pivoted norms 0.7": (base, {"slope": 0.7, "coverage": 0.0, "max_df": 0.0}),
        "+ coverage 0.5 (all query terms)": (
            base,
            {"slope": 0.7, "coverage": 0.5, "max_df": 0.0, "coverage_terms": 10_000},
        ),
        "+ max_df 0.1": (base, {"coverage_terms": 10_000}),
        "+ coverage over the 32 strongest terms (shipped)": (base, {}),
        "bigram weight 0.3": (replace(base, bigram_weight=0.3), {}),
        "bigram weight 1.0": (replace(base, bigram_weight=1.0), {}),
        "slope 0.5": (base, {"slope": 0.5}),
        "slope 0.85": (base, {"slope": 0.85}),
        "title weight 2": (replace(base, title_weight=2.0), {}),
        "title weight 4": (replace(base, title_weight=4.0), {}),
        "coverage 1.0": (base, {"coverage": 1.0}),
        "max_df 0.05": (base, {"max_df": 0.05}),
        "coverage over 12 terms": (base, {"coverage_terms": 12}),
        "coverage over 48 terms": (base, {"coverage_terms": 48}),
    }
    out = [SklearnTfidf(docs, "char")]
    out += [Matcher(docs, cfg, name, **kw) for name, (cfg, kw) in grid.items()]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judgements", type=Path, nargs="*", default=[PATH])
    args = ap.parse_args()
    judg: dict[str, dict[str, int]] = {}
    for path in args.judgements:
        for nid, grades in load_judgements(path).items():
            judg.setdefault(nid, {}).update(grades)
    order = [n for n in dev_need_ids() if n in judg]
    ids = [n for n in split(order, "tune") if any(g > 0 for g in judg[n].values())]
    docs = load_docs()
    res = evaluate(variants(docs), load_needs(), judg, ids)
    report(res, f"tune split: {len(ids)} needs with a relevant document (baseline {BASELINE})")


if __name__ == "__main__":
    main()
