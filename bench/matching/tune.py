"""Tuning runs on the tune split only: ranker variants side by side with the baseline.

    .venv/bin/python -m bench.matching.tune [--judgements FILE ...]

Every variant here was measured on the tune third of the judged needs; the chosen one is
what the service ships (its defaults), and only `evaluate` (test split) reports results.
"""

from __future__ import annotations

import argparse
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
        "shipped": (base, 0.7, 0.5, 0.0),
        "max-df-0.2": (base, 0.7, 0.5, 0.2),
        "max-df-0.1": (base, 0.7, 0.5, 0.1),
        "max-df-0.05": (base, 0.7, 0.5, 0.05),
    }
    for name, (cfg, slope, coverage, max_df) in grid.items():
        out.append(Matcher(docs, cfg, name, slope=slope, coverage=coverage, max_df=max_df))
    return out
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
