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
    base = AnalyzerConfig()
    out = [SklearnTfidf(docs, "char")]
    grid = {
        "old-matcher": (replace(base, bigrams="words", single_chars=True), 1.0),
        "runs-0.6-pivot-0.7": (replace(base, bigram_weight=0.6), 0.7),
        "runs-0.6-pivot-0.7-title2": (replace(base, bigram_weight=0.6, title_weight=2.0), 0.7),
        "runs-0.6-pivot-0.7-title1.5": (replace(base, bigram_weight=0.6, title_weight=1.5), 0.7),
        "runs-0.8-pivot-0.6-title2": (replace(base, bigram_weight=0.8, title_weight=2.0), 0.6),
        "runs-1.0-pivot-0.7-title2": (replace(base, bigram_weight=1.0, title_weight=2.0), 0.7),
    }
    for name, (cfg, slope) in grid.items():
        out.append(Matcher(docs, cfg, name, slope=slope))
    for m in out[1:]:
        as_text = Matcher.__new__(Matcher)
        as_text.__dict__.update(m.__dict__)
        as_text.name, as_text.query_mode = m.name + " (as text)", "text"
        out.append(as_text)
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
