"""Rankers compared in the evaluation: our matcher and BM25 (bm25s) on the same tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import bm25s
import numpy as np

from bench.matching.corpus import Doc, Need
from services.matching.domain.index import Attrs, MatchIndex
from services.matching.domain.text import AnalyzerConfig, analyse_patent, analyse_query, terms


class Matcher:
    """The service's ranker: field-weighted TF-IDF over postings (services.matching)."""

    def __init__(
        self,
        docs: Sequence[Doc],
        cfg: AnalyzerConfig | None = None,
        name: str = "",
        **index_kwargs: float,
    ) -> None:
        self.cfg = cfg or AnalyzerConfig()
        self.name = name or "matcher"
        self.ids = [d.id for d in docs]
        self.index = MatchIndex(**index_kwargs)  # type: ignore[arg-type]
        self.index.build(
            (i, analyse_patent(d.title, d.abstract, cfg=self.cfg), Attrs())
            for i, d in enumerate(docs)
        )

    #: "fields" = the need's title and description as stored needs are ranked
    #: (/v1/needs/{id}/matches); "text" = both in one `text`, as a client of /v1/match may send.
    query_mode = "fields"

    def as_text(self, name: str = "") -> Matcher:
        """The same index, the need sent as one text (title and description joined)."""
        clone = Matcher.__new__(Matcher)
        clone.__dict__.update(self.__dict__)
        clone.name, clone.query_mode = name or f"{self.name} (as text)", "text"
        return clone

    def rank(self, need: Need, k: int = 100) -> list[tuple[str, float]]:
        if self.query_mode == "text":
            q = analyse_query(need_text(need), cfg=self.cfg)
        else:
            q = analyse_query(need.description, title=need.title, cfg=self.cfg)
        return [(self.ids[h.key], h.score) for h in self.index.search(q, k, explain=0)]


def doc_tokens(d: Doc, cfg: AnalyzerConfig) -> list[str]:
    return terms(d.title, cfg) + terms(d.abstract, cfg)


class BM25:
    """bm25s (Lucene BM25, k1=1.5, b=0.75) over the same segmentation and stop words.

    `strip` = the query gets our need-boilerplate removal too (fair comparison of the
    scoring); without it the query is the raw need statement segmented the same way.
    """

    def __init__(self, docs: Sequence[Doc], strip: bool = True, name: str = "") -> None:
        self.cfg = AnalyzerConfig(bigrams="none")
        self.strip = strip
        self.name = name or ("bm25" if strip else "bm25-raw-query")
        self.ids = [d.id for d in docs]
        self.retriever = bm25s.BM25()
        self.retriever.index(
            [doc_tokens(d, self.cfg) or ["<empty>"] for d in docs], show_progress=False
        )
        self.vocab = self.retriever.vocab_dict

    def query_tokens(self, need: Need) -> list[str]:
        bag = analyse_query(
            need.description, title=need.title, cfg=self.cfg, need_statement=self.strip
        )
        return [t for t in bag if t in self.vocab]

    def rank(self, need: Need, k: int = 100) -> list[tuple[str, float]]:
        toks = self.query_tokens(need)
        if not toks:
            return []
        res, sc = self.retriever.retrieve([toks], k=min(k, len(self.ids)), show_progress=False)
        return [(self.ids[int(i)], float(s)) for i, s in zip(res[0], sc[0], strict=True) if s > 0]


def variants() -> dict[str, AnalyzerConfig]:
    base = AnalyzerConfig()
    return {
        "matcher": base,
        "matcher-no-bigrams": replace(base, bigrams="none"),
        "matcher-flat-fields": replace(base, title_weight=1.0),
    }


def ndcg(ranked: list[str], grades: dict[str, int], k: int = 10) -> float:
    gains = [(2 ** grades.get(d, 0) - 1) for d in ranked[:k]]
    dcg = sum(g / np.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((2**g - 1 for g in grades.values()), reverse=True)[:k]
    idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
    return float(dcg / idcg) if idcg > 0 else 0.0


def recall(ranked: list[str], grades: dict[str, int], k: int = 50) -> float:
    rel = {d for d, g in grades.items() if g > 0}
    return len(rel & set(ranked[:k])) / len(rel) if rel else 0.0


def mrr(ranked: list[str], grades: dict[str, int]) -> float:
    for i, d in enumerate(ranked):
        if grades.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def need_text(need: Need) -> str:
    """What a plain baseline sees of a need: its title and description, as the API gets them."""
    return f"{need.title}\n{need.description}"


def doc_text(d: Doc) -> str:
    return f"{d.title}\n{d.abstract}"


class SklearnTfidf:
    """A plain scikit-learn TF-IDF ranker (cosine) — the baselines of the evaluation.

    `char` = TfidfVectorizer(analyzer="char", ngram_range=(1, 2)), the strongest simple
    baseline for Chinese ranking; `word` = the same over jieba words (no stop words).
    """

    def __init__(self, docs: Sequence[Doc], kind: str = "char") -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.name = {"char": "char-ngram-tfidf", "word": "word-tfidf"}[kind]
        self.ids = [d.id for d in docs]
        if kind == "char":
            self.vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 2))
        else:
            import jieba

            jieba.setLogLevel(60)
            self.vec = TfidfVectorizer(tokenizer=jieba.lcut, lowercase=True, token_pattern=None)
        self.matrix = self.vec.fit_transform([doc_text(d) for d in docs])

    def scores(self, need: Need) -> np.ndarray:
        q = self.vec.transform([need_text(need)])
        return np.asarray((self.matrix @ q.T).todense()).ravel()

    def rank(self, need: Need, k: int = 100) -> list[tuple[str, float]]:
        s = self.scores(need)
        top = np.argsort(-s, kind="stable")[:k]
        return [(self.ids[i], float(s[i])) for i in top if s[i] > 0]
