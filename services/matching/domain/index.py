"""An incremental TF-IDF index scored through postings.

Layout. Every indexed document occupies a *slot*. Term frequencies (field-weighted,
sublinear) live in immutable CSC segments, one column per term, so a column is the
term's postings list: scoring a query touches only the postings of its own terms, never
the whole document-term matrix. The first segment comes from the last fit; uploads
arrive as small segments appended behind it; past `MAX_SEGMENTS` the newest of them are
merged (`_merge_newest`). Per-slot arrays hold the inverse document norm (0 = deleted) and
the filter attributes.

Updates. An upsert analyses the text outside the lock, appends a small segment and kills
the document's previous slot; a delete only zeroes the slot's norm. New terms get an IDF
as if they occurred once, so a fresh upload is matchable at once. IDF weights are
otherwise frozen at the last fit; when the documents changed since then exceed
`refit_ratio` of the fitted size, a background thread merges all segments, recomputes IDF
(scikit-learn's TfidfTransformer on the merged counts, no re-tokenising) and the norms,
replays the operations that arrived meanwhile, and swaps the new state in atomically.

Readers take `self._state` once and never lock; writers serialise on `self._lock`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer

from services.matching.domain.text import IPC_PREFIX

log = logging.getLogger("tjp.matching.index")

SNAPSHOT_VERSION = 2  # 2: run bigrams, no lone characters, pivoted norms
MODES = (
    "assignment",
    "exclusive_licence",
    "sole_licence",
    "non_exclusive_licence",
    "open_licence",
    "equity",
)
PATENT_TYPES = ("unknown", "invention", "utility_model", "design")


@dataclass
class Attrs:
    """Filterable facts about one document (bit masks where a document has several)."""

    pooled: bool = False
    zero_price: bool = False
    patent_type: int = 0
    modes: int = 0
    industries: int = 0
    districts: int = 0


@dataclass
class Filters:
    pooled_only: bool = False
    zero_price: bool | None = None
    patent_types: int = 0  # bit mask over PATENT_TYPES, 0 = any
    modes: int = 0  # any of these modes, 0 = any
    industries: int = 0  # any of these branches, 0 = any
    districts: int = 0  # owner in any of these districts, 0 = any
    exclude: frozenset[int] = frozenset()


@dataclass
class Hit:
    key: int
    score: float
    terms: list[tuple[str, float]] = field(default_factory=list)


BASE_FILTERS = ("pooled_only", "exclude")


@dataclass
class SearchResult:
    hits: list[Hit]
    hidden: int = 0  # documents of the unfiltered top k removed by the filters
    hidden_by: dict[str, int] = field(default_factory=dict)  # filter name -> how many of them


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest scores (unordered)."""
    if len(scores) <= k:
        return np.arange(len(scores))
    return np.argpartition(-scores, k - 1)[:k]


@dataclass(frozen=True)
class Segment:
    X: sp.csc_matrix  # rows = local rows, columns = term ids known when built
    offset: int  # slot of row 0

    @property
    def n(self) -> int:
        return int(self.X.shape[0])


class _Arrays:
    """Per-slot arrays with spare capacity (grown by doubling, copied on growth)."""

    NAMES = ("keys", "inv_norm", "pooled", "zero", "ptype", "modes", "ind", "dist")
    DTYPES = (np.int64, np.float32, np.bool_, np.bool_, np.int8, np.uint8, np.uint64, np.uint32)
    keys: np.ndarray
    inv_norm: np.ndarray
    pooled: np.ndarray
    zero: np.ndarray
    ptype: np.ndarray
    modes: np.ndarray
    ind: np.ndarray
    dist: np.ndarray

    def __init__(self, capacity: int) -> None:
        for name, dt in zip(self.NAMES, self.DTYPES, strict=True):
            setattr(self, name, np.zeros(max(capacity, 16), dtype=dt))

    @property
    def capacity(self) -> int:
        return int(len(self.keys))

    def grown(self, need: int) -> _Arrays:
        if need <= self.capacity:
            return self
        new = _Arrays(max(need, self.capacity * 2))
        for name in self.NAMES:
            old = getattr(self, name)
            getattr(new, name)[: len(old)] = old
        return new

    def set(self, slot: int, key: int, inv_norm: float, a: Attrs) -> None:
        self.keys[slot] = key
        self.inv_norm[slot] = inv_norm
        self.set_attrs(slot, a)

    def set_attrs(self, slot: int, a: Attrs) -> None:
        self.pooled[slot] = a.pooled
        self.zero[slot] = a.zero_price
        self.ptype[slot] = a.patent_type
        self.modes[slot] = a.modes
        self.ind[slot] = a.industries
        self.dist[slot] = a.districts


# Segments a query reads at most: the fitted head and the newer ones behind it. Each costs
# a query a fixed ~0.1 ms (column slicing, accumulation, explanations) whatever its size.
MAX_SEGMENTS = 4


@dataclass(frozen=True)
class _State:
    segments: tuple[Segment, ...]
    arrays: _Arrays
    n_slots: int
    idf: np.ndarray  # float32, one per term id known to this state
    pivot: float = 0.0  # mean document norm at the last fit (pivoted length normalisation)

    @cached_property
    def top_idf(self) -> float:
        """The highest IDF (a scan of the whole vocabulary: once per state, not per query)."""
        return float(self.idf.max()) if len(self.idf) else 1.0


@dataclass(frozen=True)
class Prepared:
    """A query vector against one index state (`MatchIndex.prepare`): the cost estimate
    and the search share it, and the search runs on the state the estimate saw."""

    state: _State
    ids: list[int]  # term ids scored, in the query's term order
    ws: np.ndarray  # float32 query weights of `ids`
    qn: float  # query norm
    work: int  # postings of `ids` plus slots / 8 (`MatchIndex.work`)


@dataclass(frozen=True)
class _Columns:
    """A query's term columns of one segment: a CSC copy, its columns in query-term order."""

    X: sp.csc_matrix
    terms: np.ndarray  # per column: the term's position in the query vector
    offset: int  # slot of row 0


def _columns(st: _State, ids: list[int]) -> list[_Columns]:
    tids = np.asarray(ids, dtype=np.int64)
    out = []
    for seg in st.segments:
        js = np.flatnonzero(tids < seg.X.shape[1])
        if len(js):
            out.append(_Columns(seg.X[:, tids[js]], js, seg.offset))
    return out


def _accumulate(st: _State, cols: list[_Columns], ws: np.ndarray) -> np.ndarray:
    """Each slot's sum of query weight × term frequency, float32.

    scipy's CSC product adds `data * w` column by column into a zeroed float32 vector: the
    same float32 products and sums, in the same order (per slot, query-term order), as a
    loop of `acc[rows] += w * data` per term, bit for bit (tests/matching/test_index.py),
    in one C loop instead of four array operations per term (half of a query's time)."""
    acc = np.zeros(st.n_slots, dtype=np.float32)
    for c in cols:
        acc[c.offset : c.offset + c.X.shape[0]] = c.X @ ws[c.terms]
    return acc


def _contribution_matrix(
    st: _State,
    slots: np.ndarray,
    cols: list[_Columns],
    ws: np.ndarray,
    strong: np.ndarray,
    qn: float,
) -> np.ndarray:
    """(hits × strong query terms): each term's share of each hit's score, read off the
    strong terms' postings in the query's columns (one pass per segment, not per term)."""
    contrib = np.zeros((len(slots), len(strong)), dtype=np.float64)
    col_of = np.full(len(ws), -1, dtype=np.int64)
    col_of[strong] = np.arange(len(strong))
    inv = st.arrays.inv_norm[slots].astype(np.float64)
    order = np.argsort(slots)
    by_slot = slots[order]
    for c in cols:
        n = c.X.shape[0]
        local = slots - c.offset
        local = local[(local >= 0) & (local < n)]
        keep = np.flatnonzero(col_of[c.terms] >= 0)  # the strong terms' columns
        if not len(local) or not len(keep):
            continue
        lo, hi = c.X.indptr[keep], c.X.indptr[keep + 1]
        spans = zip(lo.tolist(), hi.tolist(), strict=True)
        rows = np.concatenate([c.X.indices[a:b] for a, b in spans])
        is_hit = np.zeros(n, dtype=np.bool_)
        is_hit[local] = True
        p = np.flatnonzero(is_hit[rows])  # the strong postings of a hit
        r = order[np.searchsorted(by_slot, rows[p] + c.offset)]
        starts = np.zeros(len(keep) + 1, dtype=np.int64)
        np.cumsum(hi - lo, out=starts[1:])
        k = np.searchsorted(starts, p, side="right") - 1
        t = c.terms[keep[k]]
        vals = (ws[t] * c.X.data[lo[k] + (p - starts[k])]).astype(np.float64)
        contrib[r, col_of[t]] = vals * inv[r] / qn
    return contrib


def _tf(bag: dict[str, float]) -> dict[str, float]:
    return {t: 1.0 + math.log(w) if w > 1.0 else w for t, w in bag.items() if w > 0}


class MatchIndex:
    def __init__(
        self,
        *,
        refit_ratio: float = 0.2,
        refit_min: int = 500,
        slope: float = 0.7,
        coverage: float = 0.5,
        max_df: float = 0.1,
        coverage_terms: int = 32,
    ) -> None:
        # Pivoted length normalisation (Singhal et al.): a document's score is divided by
        # (1 - slope) * pivot + slope * norm instead of its norm, so short documents (a
        # bare title) no longer win by brevity. slope = 1 is plain cosine.
        self.slope = slope
        # Re-scoring of the top `rerank_depth` candidates by query coverage (exponent; 0 = off).
        self.coverage = coverage
        self.rerank_depth = 100
        # Query terms looked up per candidate for coverage and explanations (strongest first).
        self.coverage_terms = coverage_terms
        self.max_df = max_df
        self._lock = threading.RLock()
        self.vocab: dict[str, int] = {}
        self.terms: list[str] = []
        self.loc: dict[int, int] = {}  # key -> slot
        self._state = _State((), _Arrays(16), 0, np.zeros(0, np.float32))
        self.fitted_docs = 0
        self.changed_since_fit = 0
        self.refit_ratio = refit_ratio
        self.refit_min = refit_min
        self.position = 0  # feed position this index reflects (set by the consumer)
        self.refits = 0
        self.last_refit_s: float | None = None
        self._refit_log: list[tuple[Any, ...]] | None = None
        self._refit_thread: threading.Thread | None = None

    # ---------------------------------------------------------------- reading

    def __len__(self) -> int:
        return len(self.loc)

    def __contains__(self, key: int) -> bool:
        return key in self.loc

    def stats(self) -> dict[str, Any]:
        st = self._state
        return {
            "documents": len(self.loc),
            "slots": st.n_slots,
            "segments": len(st.segments),
            "terms": len(self.terms),
            "postings": int(sum(s.X.nnz for s in st.segments)),
            "fitted_documents": self.fitted_docs,
            "changed_since_fit": self.changed_since_fit,
            "refits": self.refits,
            "last_refit_seconds": self.last_refit_s,
            "position": self.position,
        }

    def prepare(self, qbag: dict[str, float]) -> Prepared:
        """The query vector of `qbag` on the current state and what scoring it will cost."""
        st = self._state
        if st.n_slots == 0 or not qbag:
            return Prepared(st, [], np.zeros(0, np.float32), 1.0, st.n_slots // 8)
        ids, ws, qn = self._query_vector(qbag, st)
        work = st.n_slots // 8
        if ids:
            tids = np.asarray(ids, dtype=np.int64)
            for seg in st.segments:
                t = tids[tids < seg.X.shape[1]]
                work += int((seg.X.indptr[t + 1] - seg.X.indptr[t]).sum())
        return Prepared(st, ids, ws, qn, work)

    def _query_vector(
        self, qbag: dict[str, float], st: _State
    ) -> tuple[list[int], np.ndarray, float]:
        idf = st.idf
        tf = _tf(qbag)
        get = self.vocab.get
        tids = np.fromiter((get(t, -1) for t in tf), dtype=np.int64, count=len(tf))
        known = (tids >= 0) & (tids < len(idf))
        tids = tids[known]
        term_idf = idf[tids]
        # float64 products of the float32 IDF, as `w * float(idf[tid])` term by term.
        weight = np.fromiter(tf.values(), dtype=np.float64, count=len(tf))[known]
        weight *= term_idf.astype(np.float64)
        # In most documents: long postings, next to no signal (not scored).
        common = term_idf < self._idf_floor()
        ws = weight[~common].tolist()
        common_ws = weight[common].tolist()
        ids = tids[~common].tolist()
        # Norm over every query term (unknown ones at the highest IDF, skipped common ones at
        # their own): a query that is mostly words the pool has never seen should not look
        # like a perfect match. Summed in Python, in term order, like it always was: the
        # last bits of the norm decide near-ties.
        unknown = len(qbag) - len(ids) - len(common_ws)
        top_idf = st.top_idf
        qn = math.sqrt(
            sum(w * w for w in ws) + sum(w * w for w in common_ws) + unknown * top_idf * top_idf
        )
        return ids, np.asarray(ws, dtype=np.float32), qn or 1.0

    def _idf_floor(self) -> float:
        """Query terms whose IDF is below this occur in more than `max_df` of the fitted
        documents and are not scored (their postings are the longest)."""
        n = self.fitted_docs
        if not self.max_df or n < 1000:
            return 0.0
        return math.log((1 + n) / (1 + self.max_df * n)) + 1

    def search(
        self,
        qbag: dict[str, float],
        k: int = 10,
        filters: Filters | None = None,
        explain: int = 8,
    ) -> list[Hit]:
        return self.search_report(qbag, k, filters, explain).hits

    def search_report(
        self,
        qbag: dict[str, float],
        k: int = 10,
        filters: Filters | None = None,
        explain: int = 8,
        prepared: Prepared | None = None,
    ) -> SearchResult:
        """The top k under `filters`, and which filters hid documents that would otherwise
        have been in the top k (an SME should know the best answer was filtered away).
        `prepared`: `self.prepare(qbag)` made by the caller (to decide where to run it)."""
        p = prepared if prepared is not None else self.prepare(qbag)
        st, ids, ws, qn = p.state, p.ids, p.ws, p.qn
        if not ids:
            return SearchResult([])
        cols = _columns(st, ids)
        acc = _accumulate(st, cols, ws)
        arr = st.arrays
        # Scored over every slot (contiguous, vectorised) rather than gathered per candidate:
        # the same float32 products; a slot without postings or deleted (norm 0) scores 0.
        acc *= arr.inv_norm[: st.n_slots]
        positive = acc > 0
        if filters is not None and filters.pooled_only:  # a base filter, applied up front
            positive &= arr.pooled[: st.n_slots]
        cand = np.flatnonzero(positive)
        if not len(cand):
            return SearchResult([])
        scores = acc[cand]
        hidden: dict[str, int] = {}
        n_hidden = 0
        if filters is not None and len(cand):
            masks = self._masks(arr, cand, filters)
            base = {n: masks.pop(n) for n in BASE_FILTERS if n in masks}
            if base:  # what is never shown (unpooled, excluded) is not "hidden" by a choice
                keep = np.logical_and.reduce(list(base.values()))
                cand, scores = cand[keep], scores[keep]
                masks = {n: m[keep] for n, m in masks.items()}
            if masks and len(cand):
                keep = np.logical_and.reduce(list(masks.values()))
                if not keep.all():
                    top = _top(scores, k)
                    gone = top[~keep[top]]
                    n_hidden = len(gone)
                    hidden = {
                        name: int((~m[gone]).sum()) for name, m in masks.items() if (~m[gone]).any()
                    }
                    cand, scores = cand[keep], scores[keep]
        if not len(cand):
            return SearchResult([], n_hidden, hidden)
        # Coverage: the top candidates are re-scored by the share of the query (by weight)
        # they contain, so one generic or rare term no longer decides a ranking alone.
        part = _top(scores, max(k, self.rerank_depth) if self.coverage else k)
        cand, scores = cand[part], scores[part]
        contrib = None
        if self.coverage or explain:
            # Only the query's strongest terms are looked up per candidate: the lookup is a
            # loop over terms, and a long need has 150 of them, most carrying little weight.
            strong = np.argsort(-ws, kind="stable")[: self.coverage_terms]
            sids = [ids[j] for j in strong.tolist()]
            sws = ws[strong]
            contrib = _contribution_matrix(st, cand, cols, ws, strong, qn)
        if self.coverage and contrib is not None:
            w2 = sws.astype(np.float64) ** 2
            factor = (((contrib > 0) @ w2) / max(float(w2.sum()), 1e-12)) ** self.coverage
            scores = (scores * factor).astype(np.float32)
            contrib *= factor[:, None]
        part = _top(scores, k)
        order = part[np.argsort(-scores[part], kind="stable")]
        slots = cand[order]
        hits = [
            Hit(key, score / qn)
            for key, score in zip(
                arr.keys[slots].tolist(), scores[order].astype(np.float64).tolist(), strict=True
            )
        ]
        if explain and hits and contrib is not None:
            for hit, terms in zip(
                hits, self._term_pairs(contrib[order], sids, explain), strict=True
            ):
                hit.terms = terms
        return SearchResult(hits, n_hidden, hidden)

    def work(self, qbag: dict[str, float]) -> int:
        """A cost estimate for `search(qbag)`: postings of the query's scored terms plus the
        slots the accumulator spans (both are touched once per posting/slot)."""
        return self.prepare(qbag).work

    def _masks(self, arr: _Arrays, cand: np.ndarray, f: Filters) -> dict[str, np.ndarray]:
        """One boolean mask per active filter (True = the candidate passes)."""
        m: dict[str, np.ndarray] = {}  # pooled_only: applied to the slots before (search)
        if f.zero_price is not None:
            m["zero_price"] = arr.zero[cand] == f.zero_price
        if f.patent_types:
            m["patent_types"] = (
                (np.left_shift(1, arr.ptype[cand].astype(np.int64))) & f.patent_types
            ) != 0
        if f.modes:
            m["modes"] = (arr.modes[cand] & np.uint8(f.modes)) != 0
        if f.industries:
            m["industries"] = (arr.ind[cand] & np.uint64(f.industries)) != 0
        if f.districts:
            m["owner_districts"] = (arr.dist[cand] & np.uint32(f.districts)) != 0
        if f.exclude:
            m["exclude"] = ~np.isin(arr.keys[cand], np.fromiter(f.exclude, dtype=np.int64))
        return m

    def _term_pairs(
        self, contrib: np.ndarray, ids: list[int], limit: int
    ) -> list[list[tuple[str, float]]]:
        """Per hit: (term, share of the score) of the `limit` largest query terms it holds,
        largest first (ties in query-term order)."""
        rows, cols = np.nonzero(contrib)  # row by row, columns ascending
        vals = contrib[rows, cols]
        order = np.lexsort((-vals, rows))  # stable: equal shares keep the column order
        ends = np.cumsum(np.bincount(rows, minlength=contrib.shape[0])).tolist()
        terms = self.terms
        pairs = [
            (terms[ids[c]], v)
            for c, v in zip(cols[order].tolist(), vals[order].tolist(), strict=True)
        ]
        out = []
        start = 0
        for end in ends:
            out.append(pairs[start : min(end, start + limit)])
            start = end
        return out

    # ---------------------------------------------------------------- writing

    def _term_ids(self, bag: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        tf = _tf(bag)
        ids = np.empty(len(tf), dtype=np.int32)
        vals = np.empty(len(tf), dtype=np.float32)
        for i, (t, w) in enumerate(tf.items()):
            tid = self.vocab.get(t)
            if tid is None:
                tid = len(self.terms)
                self.vocab[t] = tid
                self.terms.append(t)
            ids[i] = tid
            vals[i] = w
        return ids, vals

    def _idf_for(self, st: _State) -> np.ndarray:
        """IDF extended to the current vocabulary (unseen terms: df = 1)."""
        if len(st.idf) >= len(self.terms):
            return st.idf
        n = max(self.fitted_docs, len(self.loc), 1)
        fresh = np.full(len(self.terms) - len(st.idf), math.log((1 + n) / 2) + 1, np.float32)
        return np.concatenate([st.idf, fresh])

    def upsert_many(self, docs: Sequence[tuple[int, dict[str, float], Attrs]]) -> None:
        """Add or replace documents (bags from `text.analyse_*`)."""
        if not docs:
            return
        with self._lock:
            self._apply_upserts(docs)
            if self._refit_log is not None:
                self._refit_log.append(("upsert", docs))
            self._after_change(len(docs))

    def _apply_upserts(self, docs: Sequence[tuple[int, dict[str, float], Attrs]]) -> None:
        st = self._state
        # A key given twice in one batch: the last one wins.
        last = {key: i for i, (key, _, _) in enumerate(docs)}
        docs = [d for i, d in enumerate(docs) if last[d[0]] == i]
        rows = [self._term_ids(bag) for _, bag, _ in docs]
        idf = self._idf_for(st)
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(r[0]) for r in rows])
        indices = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.int32)
        data = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0, np.float32)
        X = sp.csr_matrix((data, indices, indptr), shape=(len(rows), len(self.terms))).tocsc()
        X.sort_indices()
        base = st.n_slots
        arrays = st.arrays.grown(base + len(rows))
        for i, ((key, _, attrs), (ids, vals)) in enumerate(zip(docs, rows, strict=True)):
            old = self.loc.get(key)
            if old is not None:
                arrays.inv_norm[old] = 0.0
            norm = float(np.sqrt(np.sum((vals * idf[ids]) ** 2)))
            arrays.set(base + i, key, self._inverse(norm, st.pivot), attrs)
            self.loc[key] = base + i
        segments = (*st.segments, Segment(X, base))
        self._state = _State(segments, arrays, base + len(rows), idf, st.pivot)
        if len(segments) > MAX_SEGMENTS:
            self._merge_newest()

    def _merge_newest(self) -> None:
        """Merge the newest segments into one (no IDF change): the last two, and each older
        one no bigger than the rows merged so far. Sizes then grow from newest to oldest,
        so a row is merged again only when its segment has about doubled (a few merges per
        row), while every query pays each segment's fixed cost on few segments. The fitted
        head is left alone: only a refit rewrites it."""
        segs = self._state.segments
        start, rows = len(segs) - 2, segs[-1].n + segs[-2].n
        while start > 1 and segs[start - 1].n <= rows:
            start -= 1
            rows += segs[start].n
        self._merge_from(start)

    def _merge_from(self, start: int) -> None:
        """Segments `start` onwards, merged into one."""
        st = self._state
        segs = st.segments
        ncols = len(self.terms)
        parts = [_pad(s.X, ncols).tocsr() for s in segs[start:]]
        X = sp.vstack(parts, format="csr").tocsc()
        X.sort_indices()
        merged = Segment(X, segs[start].offset)
        self._state = _State((*segs[:start], merged), st.arrays, st.n_slots, st.idf, st.pivot)

    def remove(self, keys: Iterable[int]) -> int:
        keys = list(keys)
        n = 0
        with self._lock:
            st = self._state
            for key in keys:
                slot = self.loc.pop(key, None)
                if slot is not None:
                    st.arrays.inv_norm[slot] = 0.0
                    n += 1
            if self._refit_log is not None:
                self._refit_log.append(("remove", keys))
            self._after_change(n)
        return n

    def set_attrs(self, updates: Iterable[tuple[int, Attrs]]) -> None:
        updates = list(updates)
        with self._lock:
            arrays = self._state.arrays
            for key, attrs in updates:
                slot = self.loc.get(key)
                if slot is not None:
                    arrays.set_attrs(slot, attrs)
            if self._refit_log is not None:
                self._refit_log.append(("attrs", updates))

    def attrs_of(self, key: int) -> Attrs | None:
        slot = self.loc.get(key)
        if slot is None:
            return None
        a = self._state.arrays
        return Attrs(
            bool(a.pooled[slot]),
            bool(a.zero[slot]),
            int(a.ptype[slot]),
            int(a.modes[slot]),
            int(a.ind[slot]),
            int(a.dist[slot]),
        )

    def _after_change(self, n: int) -> None:
        self.changed_since_fit += n
        limit = max(self.refit_min, self.refit_ratio * self.fitted_docs)
        if self.changed_since_fit > limit and self._refit_thread is None:
            self._refit_thread = threading.Thread(
                target=self._refit_background, name="matching-refit", daemon=True
            )
            self._refit_thread.start()

    # ---------------------------------------------------------------- fitting

    def refit(self) -> None:
        """Merge every segment, recompute IDF and norms, swap atomically."""
        with self._lock:
            st = self._state
            self._refit_log = []
            ncols = len(self.terms)
            slots = np.fromiter(sorted(self.loc.values()), dtype=np.int64, count=len(self.loc))
        t0 = time.perf_counter()
        try:
            new_state, new_loc = self._fitted_state(st, slots, ncols)
        except BaseException:
            with self._lock:
                self._refit_log = None
            raise
        with self._lock:
            pending, self._refit_log = self._refit_log, None
            self._state, self.loc = new_state, new_loc
            self.fitted_docs = len(new_loc)
            self.changed_since_fit = 0
            for op in pending:
                if op[0] == "upsert":
                    self._apply_upserts(op[1])
                    self.changed_since_fit += len(op[1])
                elif op[0] == "remove":
                    for key in op[1]:
                        slot = self.loc.pop(key, None)
                        if slot is not None:
                            self._state.arrays.inv_norm[slot] = 0.0
                            self.changed_since_fit += 1
                else:
                    for key, attrs in op[1]:
                        slot = self.loc.get(key)
                        if slot is not None:
                            self._state.arrays.set_attrs(slot, attrs)
            self.refits += 1
            self.last_refit_s = round(time.perf_counter() - t0, 3)
        log.info("index refit: %s documents in %.2fs", len(self.loc), self.last_refit_s)

    def _refit_background(self) -> None:
        try:
            self.refit()
        except Exception:  # pragma: no cover - logged, the old state stays in service
            log.exception("index refit failed")
        finally:
            self._refit_thread = None

    def wait_refit(self, timeout: float = 60.0) -> None:
        t = self._refit_thread
        if t is not None:
            t.join(timeout)

    def _fitted_state(
        self, st: _State, slots: np.ndarray, ncols: int
    ) -> tuple[_State, dict[int, int]]:
        parts = []
        for seg in st.segments:
            lo, hi = np.searchsorted(slots, [seg.offset, seg.offset + seg.n])
            if hi > lo:
                parts.append(_pad(seg.X, ncols).tocsr()[slots[lo:hi] - seg.offset])
        X = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, ncols), dtype=np.float32)
        arrays = _Arrays(len(slots) + 1024)
        for name in _Arrays.NAMES:
            getattr(arrays, name)[: len(slots)] = getattr(st.arrays, name)[slots]
        new = self._fit_matrix(X, arrays)
        keys = arrays.keys[: len(slots)].tolist()
        return new, dict(zip(keys, range(len(keys)), strict=True))

    def _fit_matrix(self, X: sp.csr_matrix, arrays: _Arrays) -> _State:
        n = X.shape[0]
        if n:
            tr = TfidfTransformer(norm=None, use_idf=True, smooth_idf=True, sublinear_tf=False)
            tr.fit(X)
            idf = tr.idf_.astype(np.float32)
        else:
            idf = np.ones(X.shape[1], dtype=np.float32)
        # Row norms of tf*idf without copying the matrix: square per entry, sum per row.
        w = X.data * idf[X.indices]
        np.square(w, out=w)
        starts = X.indptr[:-1]
        norms = np.zeros(n, dtype=np.float32)
        nonempty = X.indptr[1:] > starts
        if len(w):
            norms[nonempty] = np.sqrt(np.add.reduceat(w, starts[nonempty]))
        del w
        pivot = float(norms[nonempty].mean()) if nonempty.any() else 0.0
        denom = (1.0 - self.slope) * pivot + self.slope * norms
        with np.errstate(divide="ignore"):
            arrays.inv_norm[:n] = np.where(norms > 0, 1.0 / denom, 0.0)
        Xc = X.tocsc()
        Xc.sort_indices()
        return _State((Segment(Xc, 0),), arrays, n, idf, pivot)

    def _inverse(self, norm: float, pivot: float) -> float:
        if norm <= 0:
            return 0.0
        if not pivot:  # nothing fitted yet: plain cosine until the first fit
            return 1.0 / norm
        return 1.0 / ((1.0 - self.slope) * pivot + self.slope * norm)

    def build(self, docs: Iterable[tuple[int, dict[str, float], Attrs]]) -> None:
        """Replace the whole index with these documents (one fit, no segments)."""
        vocab: dict[str, int] = {}
        terms: list[str] = []
        indptr = array("q", [0])
        indices = array("i")
        data = array("f")
        keys = array("q")
        attrs_list: list[Attrs] = []
        for key, bag, attrs in docs:
            for t, w in _tf(bag).items():
                tid = vocab.get(t)
                if tid is None:
                    tid = vocab[t] = len(terms)
                    terms.append(t)
                indices.append(tid)
                data.append(w)
            indptr.append(len(indices))
            keys.append(key)
            attrs_list.append(attrs)
        n = len(keys)
        X = _csr(data, indices, indptr, n, len(terms))
        _sort_csr_rows(X)
        arrays = _Arrays(n + 1024)
        arrays.keys[:n] = np.frombuffer(keys, dtype=np.int64)
        for i, a in enumerate(attrs_list):
            arrays.set_attrs(i, a)
        state = self._fit_matrix(X, arrays)
        with self._lock:
            self.vocab, self.terms = vocab, terms
            self.loc = dict(zip(keys.tolist(), range(n), strict=True))
            self._state = state
            self.fitted_docs = n
            self.changed_since_fit = 0

    # ---------------------------------------------------------------- persistence

    def save(self, directory: str | Path, name: str = "index") -> Path:
        """Write `<name>.npz` atomically (temp file + rename); returns its path."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        with self._lock:
            st = self._state
            n = st.n_slots
            arrays = {a: getattr(st.arrays, a)[:n].copy() for a in _Arrays.NAMES}
            terms = list(self.terms)
            meta = {
                "version": SNAPSHOT_VERSION,
                "position": self.position,
                "fitted_docs": self.fitted_docs,
                "changed_since_fit": self.changed_since_fit,
                "offsets": [s.offset for s in st.segments],
                "pivot": st.pivot,
                "slope": self.slope,
                "saved_at": time.time(),
            }
        payload: dict[str, Any] = {f"a_{k}": v for k, v in arrays.items()}
        payload["idf"] = st.idf
        payload["terms"] = np.asarray(terms, dtype=str) if terms else np.zeros(0, dtype="<U1")
        for i, seg in enumerate(st.segments):
            payload[f"s{i}_indptr"] = seg.X.indptr
            payload[f"s{i}_indices"] = seg.X.indices
            payload[f"s{i}_data"] = seg.X.data
            payload[f"s{i}_shape"] = np.asarray(seg.X.shape, dtype=np.int64)
        payload["meta"] = np.asarray(json.dumps(meta))
        final = d / f"{name}.npz"
        tmp = d / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp.npz"
        np.savez(tmp, **payload)
        os.replace(tmp, final)
        return final

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> MatchIndex:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("version") != SNAPSHOT_VERSION:
                raise ValueError(f"snapshot version {meta.get('version')} is not supported")
            idx = cls(**kwargs)
            idx.terms = [str(t) for t in z["terms"]]
            idx.vocab = {t: i for i, t in enumerate(idx.terms)}
            n = len(z["a_keys"])
            arrays = _Arrays(n + 1024)
            for a in _Arrays.NAMES:
                getattr(arrays, a)[:n] = z[f"a_{a}"]
            segments = []
            for i, off in enumerate(meta["offsets"]):
                shape = tuple(int(x) for x in z[f"s{i}_shape"])
                X = sp.csc_matrix(
                    (z[f"s{i}_data"], z[f"s{i}_indices"], z[f"s{i}_indptr"]), shape=shape
                )
                segments.append(Segment(X, int(off)))
            if float(meta.get("slope", 1.0)) != idx.slope:
                raise ValueError("snapshot was built with another length normalisation")
            idx._state = _State(
                tuple(segments), arrays, n, z["idf"].astype(np.float32), float(meta.get("pivot", 0))
            )
            alive = np.flatnonzero(arrays.inv_norm[:n] > 0)
            idx.loc = dict(zip(arrays.keys[alive].tolist(), alive.tolist(), strict=True))
            idx.position = int(meta["position"])
            idx.fitted_docs = int(meta["fitted_docs"])
            idx.changed_since_fit = int(meta["changed_since_fit"])
        return idx


def _pad(X: sp.csc_matrix, ncols: int) -> sp.csc_matrix:
    """The same matrix with `ncols` columns (terms added after it was built are empty)."""
    if X.shape[1] == ncols:
        return X
    indptr = np.concatenate([X.indptr, np.full(ncols - X.shape[1], X.indptr[-1])])
    return sp.csc_matrix((X.data, X.indices, indptr), shape=(X.shape[0], ncols))


def _csr(data: array, indices: array, indptr: array, n: int, ncols: int) -> sp.csr_matrix:
    return sp.csr_matrix(
        (
            np.frombuffer(data, dtype=np.float32),
            np.frombuffer(indices, dtype=np.int32),
            np.frombuffer(indptr, dtype=np.int64),
        ),
        shape=(n, ncols),
    )


def _sort_csr_rows(X: sp.csr_matrix) -> None:
    X.has_sorted_indices = False
    X.sort_indices()


def display_term(term: str) -> str:
    """How a term is shown in an explanation."""
    if term.startswith(IPC_PREFIX):
        return term[len(IPC_PREFIX) :].upper()
    return term.lstrip("~")
