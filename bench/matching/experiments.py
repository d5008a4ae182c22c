"""Ideas measured on the tune split and not shipped (or shipped as a setting), each a
function printing nDCG@10 and the paired difference against the character n-gram baseline.

    .venv/bin/python -m bench.matching.experiments [prf|genre|headline|length]

- prf: pseudo-relevance feedback (Rocchio: the top m documents' strongest terms added to
  the query) — from −0.034 to +0.029 on the tune split, inside the noise, at twice the
  scoring work; not shipped (yet).
- genre: query terms down-weighted by how much more often need statements use them than
  patents do (document frequencies from the tune needs only) — no gain; with 100 needs the
  ratios pick topical words (电梯) more than genre.
- headline: a need sent as one text, its short first line weighted as the title (shipped).
- length: the matcher and the baseline by need length.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from bench.matching.corpus import Need, dev_need_ids, load_docs, load_needs
from bench.matching.evaluate import bootstrap, split
from bench.matching.judgements import load_judgements
from bench.matching.methods import Matcher, SklearnTfidf, ndcg
from services.matching.domain.text import analyse_patent, analyse_query


class Setup:
    def __init__(self) -> None:
        self.docs = load_docs()
        self.needs = load_needs()
        self.judg = load_judgements()
        order = [n for n in dev_need_ids() if n in self.judg]
        self.tune = split(order, "tune")
        self.ids = [n for n in self.tune if any(g > 0 for g in self.judg[n].values())]
        self.char = SklearnTfidf(self.docs, "char")
        self.m = Matcher(self.docs)
        self.base = np.array([self.score(self.char.rank(self.needs[n], 50), n) for n in self.ids])

    def score(self, ranked: list[tuple[str, float]], nid: str) -> float:
        return ndcg([d for d, _ in ranked], self.judg[nid])

    def ranked(self, bag: dict[str, float]) -> list[tuple[str, float]]:
        return [(self.m.ids[h.key], h.score) for h in self.m.index.search(bag, 50, explain=0)]

    def report(self, name: str, make_bag: Callable[[Need], dict[str, float]]) -> None:
        r = np.array([self.score(self.ranked(make_bag(self.needs[n])), n) for n in self.ids])
        d = r - self.base
        lo, hi = bootstrap(d)
        print(f"| {name} | {r.mean():.3f} | {d.mean():+.3f} ({lo:+.3f} to {hi:+.3f}) |")


def query(s: Setup, need: Need) -> dict[str, float]:
    return analyse_query(need.description, title=need.title, cfg=s.m.cfg)


def prf(s: Setup) -> None:
    idx = s.m.index
    idf = idx._state.idf
    bags = [analyse_patent(d.title, d.abstract, cfg=s.m.cfg) for d in s.docs]

    def unit(bag: dict[str, float]) -> dict[str, float]:
        out = {}
        for t, w in bag.items():
            tid = idx.vocab.get(t)
            if tid is not None:
                out[t] = (1 + math.log(w) if w > 1 else w) * float(idf[tid])
        norm = math.sqrt(sum(v * v for v in out.values())) or 1.0
        return {t: v / norm for t, v in out.items()}

    def expanded(need: Need, m: int, beta: float, top_terms: int) -> dict[str, float]:
        q = query(s, need)
        hits = idx.search(q, m, explain=0)
        acc: dict[str, float] = {}
        for h in hits:
            for t, v in unit(bags[h.key]).items():
                acc[t] = acc.get(t, 0.0) + v / len(hits)
        best = sorted(acc.items(), key=lambda kv: -kv[1])[:top_terms]
        if not best:
            return q
        mean_w, top = sum(q.values()) / len(q), best[0][1]
        out = dict(q)
        for t, v in best:
            out[t] = out.get(t, 0.0) + beta * mean_w * v / top
        return out

    s.report("no feedback", lambda n: query(s, n))
    for m in (3, 5):
        for beta in (0.3, 0.6, 1.0):
            for top_terms in (10, 30):
                s.report(
                    f"prf m={m} beta={beta} terms={top_terms}",
                    lambda n, m=m, b=beta, t=top_terms: expanded(n, m, b, t),
                )


def genre(s: Setup) -> None:
    idx = s.m.index
    n_docs = idx.fitted_docs
    df_pat = np.zeros(len(idx.terms))
    for seg in idx._state.segments:
        df_pat[: seg.X.shape[1]] += np.diff(seg.X.indptr)
    df_need: dict[str, int] = {}
    for nid in s.tune:
        for t in query(s, s.needs[nid]):
            df_need[t] = df_need.get(t, 0) + 1

    def ratio(t: str) -> float:
        tid = idx.vocab.get(t)
        p = ((df_pat[tid] if tid is not None else 0) + 0.5) / n_docs
        return ((df_need.get(t, 0) + 0.5) / len(s.tune)) / p

    def weighted(need: Need, min_ratio: float, alpha: float) -> dict[str, float]:
        out = {}
        for t, w in query(s, need).items():
            r = ratio(t)
            out[t] = w * (min_ratio / r) ** alpha if df_need.get(t, 0) >= 3 and r > min_ratio else w
        return out

    s.report("no genre weighting", lambda n: query(s, n))
    for min_ratio in (3, 10, 30):
        for alpha in (0.5, 1.0):
            s.report(
                f"genre ratio>{min_ratio} alpha={alpha}",
                lambda n, r=min_ratio, a=alpha: weighted(n, r, a),
            )


def headline(s: Setup) -> None:
    for join in ("\n", "。", " "):
        for on in (False, True):
            cfg = replace(s.m.cfg, headline=on)
            s.report(
                f"one text joined by {join!r}, headline {'on' if on else 'off'}",
                lambda n, j=join, c=cfg: analyse_query(n.title + j + n.description, cfg=c),
            )


def length(s: Setup) -> None:
    lengths = np.array([len(s.needs[n].title + s.needs[n].description) for n in s.ids])
    mine = np.array([s.score(s.ranked(query(s, s.needs[n])), n) for n in s.ids])
    print("| need length (chars) | needs | matcher | char n-gram baseline |")
    print("|---|---|---|---|")
    for lo, hi in ((0, 80), (80, 200), (200, 100_000)):
        sel = (lengths >= lo) & (lengths < hi)
        print(f"| {lo}–{hi} | {sel.sum()} | {mine[sel].mean():.3f} | {s.base[sel].mean():.3f} |")


def main() -> None:
    chosen = sys.argv[1:] or ["prf", "genre", "headline", "length"]
    s = Setup()
    for name in chosen:
        print(f"\n## {name} (tune split, {len(s.ids)} needs)")
        if name != "length":
            print("| variant | nDCG@10 | paired difference vs char n-gram (95 % CI) |")
            print("|---|---|---|")
        {"prf": prf, "genre": genre, "headline": headline, "length": length}[name](s)


if __name__ == "__main__":
    main()
