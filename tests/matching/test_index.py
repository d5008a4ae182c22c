"""The index and text analysis, without HTTP."""

from __future__ import annotations

import threading

from services.matching.domain.index import Attrs, Filters, MatchIndex
from services.matching.domain.text import analyse_patent, analyse_query, strip_boilerplate

DOCS = {
    1: (
        "一种LED恒流驱动电路",
        "本发明公开了一种LED恒流升压驱动电路，输出电流稳定，散热好。",
        ["H05B45/37"],
    ),
    2: (
        "一种锂离子电池正极材料",
        "本发明涉及磷酸铁锂正极材料的制备方法，提高倍率性能。",
        ["H01M4/58"],
    ),
    3: (
        "一种针织围巾",
        "本实用新型公开了一种抗起球的针织围巾，表面经过处理不易起球。",
        ["D04B1/22"],
    ),
    4: ("开关电源", "一种开关电源，包括升压电路与控制芯片，用于LED照明驱动。", ["H02M3/155"]),
    5: ("可生物降解地膜", "一种全生物降解农用地膜及其制备方法，降解率高。", ["C08L67/02"]),
}


def bag(i: int) -> dict[str, float]:
    t, a, ipc = DOCS[i]
    return analyse_patent(t, a, ipc_codes=ipc)


def make(**kw: object) -> MatchIndex:
    idx = MatchIndex(**kw)  # type: ignore[arg-type]
    idx.build((i, bag(i), Attrs(pooled=i != 4)) for i in DOCS)
    return idx


def test_boilerplate_and_stop_words_are_dropped() -> None:
    assert "现寻求一种技术" not in strip_boilerplate("现寻求一种技术，可以防止起球")
    q = analyse_query("现寻求一种技术，可以防止围巾起球。预期效果：美观", title="防起球")
    assert "起球" in q and "围巾" in q
    assert not {"寻求", "一种", "技术", "预期", "效果"} & set(q)


def test_ranking_explains_with_query_terms() -> None:
    idx = make()
    hits = idx.search(analyse_query("我们的LED驱动过热，需要恒流升压电路"), k=3)
    assert hits[0].key == 1
    assert {t for t, _ in hits[0].terms} >= {"恒流", "led"}
    assert all(w > 0 for _, w in hits[0].terms)
    assert 0 < hits[0].score <= 1


def test_filters_and_ipc_features() -> None:
    idx = make()
    q = analyse_query("LED 升压电路")
    assert 4 in {h.key for h in idx.search(q, 5)}
    assert 4 not in {h.key for h in idx.search(q, 5, Filters(pooled_only=True))}
    hits = idx.search(analyse_query("", ipc_codes=["H01M"]), 5)
    assert [h.key for h in hits] == [2]


def test_incremental_upsert_remove_and_refit_equal_a_full_build() -> None:
    full = make()
    inc = MatchIndex(refit_min=10_000)
    inc.build((i, bag(i), Attrs(pooled=i != 4)) for i in (1, 2))
    inc.upsert_many([(i, bag(i), Attrs(pooled=i != 4)) for i in (3, 4)])
    inc.upsert_many([(5, bag(5), Attrs(pooled=True))])
    q = analyse_query("生物降解 地膜")
    assert inc.search(q, 1)[0].key == 5  # matchable before any refit
    inc.refit()
    q = analyse_query("LED 恒流 升压 电路 正极")
    a = [(h.key, round(h.score, 5)) for h in full.search(q, 5)]
    b = [(h.key, round(h.score, 5)) for h in inc.search(q, 5)]
    assert a == b
    inc.remove([1])
    assert 1 not in {h.key for h in inc.search(q, 5)}
    inc.upsert_many([(2, analyse_patent("恒流驱动电路", "LED恒流"), Attrs())])
    assert inc.search(analyse_query("恒流"), 1)[0].key == 2
    assert len(inc) == 4


def test_snapshot_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    idx = make()
    idx.upsert_many([(9, analyse_patent("新型地膜", "地膜降解"), Attrs(pooled=True))])
    idx.position = 42
    path = idx.save(tmp_path)
    back = MatchIndex.load(path)
    q = analyse_query("地膜 降解 LED")
    assert [h.key for h in back.search(q, 5)] == [h.key for h in idx.search(q, 5)]
    assert back.position == 42 and len(back) == len(idx)
    assert back.attrs_of(9) == Attrs(pooled=True)


def test_background_refit_keeps_concurrent_writes() -> None:
    idx = MatchIndex(refit_ratio=0.0, refit_min=0)
    idx.build((i, bag(i), Attrs()) for i in (1, 2, 3))
    stop = threading.Event()

    def writer() -> None:
        n = 100
        while not stop.is_set() and n < 400:
            idx.upsert_many([(n, analyse_patent(f"测试文档{n}", "恒流电源"), Attrs())])
            n += 1

    t = threading.Thread(target=writer)
    t.start()
    t.join()
    stop.set()
    idx.wait_refit()
    # The writes themselves started the refits in the background (refit_min=0); nothing
    # here calls refit().
    assert idx.refits >= 1
    assert len(idx) == 3 + 300
    found = {h.key for h in idx.search(analyse_query("恒流电源"), 500)}
    assert found >= set(range(100, 400))


def test_explanations_sum_to_the_score_across_segments() -> None:
    """Each hit's term shares (computed for all hits at once) add up to its score, also for
    documents in appended segments, and `work` counts the postings a query touches."""
    idx = MatchIndex(refit_min=10_000)
    idx.build((i, bag(i), Attrs(pooled=True)) for i in (1, 2, 3))
    idx.upsert_many([(4, bag(4), Attrs(pooled=True))])
    idx.upsert_many([(5, bag(5), Attrs(pooled=True)), (6, bag(1), Attrs(pooled=True))])
    q = analyse_query("LED 恒流 升压 驱动 电路 正极 地膜", ipc_codes=["H05B45/37"])
    hits = idx.search(q, 10, explain=100)
    assert {h.key for h in hits} >= {1, 4, 6}
    for h in hits:
        assert h.terms == sorted(h.terms, key=lambda kv: -kv[1])
        assert abs(sum(w for _, w in h.terms) - h.score) < 1e-5
    assert [t for t, _ in next(h for h in hits if h.key == 1).terms] == [
        t for t, _ in next(h for h in hits if h.key == 6).terms
    ]
    assert idx.work({}) == idx.work({"no-such-term": 1.0}) == 6 // 8
    assert idx.work(analyse_query("恒流")) > idx.work(analyse_query("地膜"))


def test_term_spans_equal_the_regex_alternation() -> None:
    import random
    import re

    from services.matching.domain.explain import find_terms

    rnd = random.Random(7)
    alphabet = "恒流源升压电ab"
    for _ in range(2000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))
        words = sorted(
            {"".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 4))) for _ in range(5)},
            key=len,
            reverse=True,
        )
        pattern = re.compile("|".join(re.escape(w) for w in words))
        assert find_terms(text, words) == [m.span() for m in pattern.finditer(text)]


def test_run_bigrams_join_compounds_the_segmenter_split_differently() -> None:
    for a, b, shared in [
        ("烟感器", "烟感探测器", "~烟感"),
        ("骨科外固定架", "骨科固定器", "~固定"),
        ("聚丙烯酰胺", "聚丙烯酸钠", "~丙烯"),
    ]:
        qa, qb = analyse_query(a, need_statement=False), analyse_patent(b, "")
        assert shared in qa and shared in qb
    # Stop words and punctuation end a run: no bigram spans them; lone characters are no terms.
    bag = analyse_patent("一种耐水解的聚氨酯，及其制备方法", "")
    assert "~的聚" not in bag and "~酯及" not in bag
    assert "耐" not in bag and "~耐水" in bag


def test_pivoted_norms_stop_bare_titles_winning_by_brevity() -> None:
    long_abstract = (
        "本发明公开一种LED恒流升压驱动电路，" + "包括整流桥、滤波电容、功率开关管与控制芯片，" * 4
    )
    docs = [
        (1, analyse_patent("LED恒流驱动", ""), Attrs(pooled=True)),
        (2, analyse_patent("一种LED恒流升压驱动电路", long_abstract), Attrs(pooled=True)),
    ] + [(10 + i, bag(i), Attrs(pooled=True)) for i in DOCS]
    q = analyse_query("LED 恒流 升压 驱动 电路")
    ratio = {}
    for slope in (1.0, 0.7, 0.3):
        idx = MatchIndex(slope=slope, coverage=0)
        idx.build(docs)
        scores = {h.key: h.score for h in idx.search(q, 10)}
        ratio[slope] = scores[2] / scores[1]
    # Plain cosine puts the bare title above the document that covers the query in full;
    # the lower the slope, the more the long document gains, until it leads.
    assert ratio[1.0] < 1 < ratio[0.3]
    assert ratio[1.0] < ratio[0.7] < ratio[0.3]


def test_coverage_rescoring_prefers_documents_holding_more_of_the_query() -> None:
    docs = [
        (1, analyse_patent("虫害防治", "一种虫害防治方法。虫害。"), Attrs(pooled=True)),
        (
            2,
            analyse_patent("果园低成本虫害监测装置", "用于果园的低成本监测，摄像识别"),
            Attrs(pooled=True),
        ),
    ] + [(10 + i, bag(i), Attrs(pooled=True)) for i in DOCS]
    q = analyse_query("果园 低成本 监测 虫害 摄像")
    top = {}
    for coverage in (0.0, 0.5):
        idx = MatchIndex(coverage=coverage)
        idx.build(docs)
        hits = idx.search(q, 2, explain=100)
        top[coverage] = hits[0].key
        for h in hits:  # explanations still add up to the (re-scored) score
            assert abs(sum(w for _, w in h.terms) - h.score) < 1e-5
    assert top[0.5] == 2


def test_filters_report_what_they_hid() -> None:
    idx = make()
    q = analyse_query("LED 升压 电路 驱动")
    everything = idx.search_report(q, 3, Filters(pooled_only=True))
    assert everything.hidden == 0 and everything.hits
    only_design = idx.search_report(q, 3, Filters(pooled_only=True, patent_types=1 << 3))
    assert only_design.hits == []
    assert only_design.hidden == len(everything.hits)
    assert only_design.hidden_by == {"patent_types": len(everything.hits)}
    # Documents outside the pool (4 is unpooled) are never counted as hidden.
    assert 4 not in {h.key for h in idx.search(q, 10, Filters(pooled_only=True))}


def test_a_need_sent_as_one_text_has_its_headline_weighted_as_a_title() -> None:
    title, body = (
        "LED手电筒红外开关改进",
        "现有产品中手电筒的开关是机械式，非常容易损坏，导致接触不良。",
    )
    as_fields = analyse_query(body, title=title)
    for joined in (f"{title}\n{body}", f"{title}。{body}"):
        assert analyse_query(joined) == as_fields
    # No short head, or nothing after it: the text is the body, nothing is a title.
    long_head = "现有产品中手电筒的开关是机械式的，非常容易损坏导致接触不良，需要改进红外开关。"
    assert analyse_query(long_head) == analyse_query(long_head, title="", cfg=_no_headline())
    assert analyse_query(title) == analyse_query(title, cfg=_no_headline())


def _no_headline():  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from services.matching.domain.text import AnalyzerConfig

    return replace(AnalyzerConfig(), headline=False)


def test_scores_are_the_per_term_float32_sums_across_segments() -> None:
    """The one scatter-add over all of a query's postings gives, bit for bit, the scores of
    the plain loop it replaced (per segment, per query term: `acc[rows] += w * data`), also
    with appended segments, a replaced and a deleted document: rankings cannot move."""
    import numpy as np

    idx = MatchIndex(refit_min=10_000, coverage=0.0)
    idx.build((i, bag(i), Attrs(pooled=True)) for i in (1, 2, 3))
    idx.upsert_many([(4, bag(4), Attrs(pooled=True)), (7, bag(1), Attrs(pooled=True))])
    idx.upsert_many([(5, bag(5), Attrs(pooled=True)), (6, bag(1), Attrs(pooled=True))])
    idx.upsert_many([(2, analyse_patent("正极材料与LED", "恒流电路"), Attrs(pooled=True))])
    idx.remove([3])
    st = idx._state
    assert len(st.segments) == 4
    for text in ("LED 恒流 升压 驱动 电路 正极 地膜", "开关电源 控制芯片", "降解 地膜 正极材料"):
        q = analyse_query(text)
        p = idx.prepare(q)
        acc = np.zeros(st.n_slots, dtype=np.float32)
        for seg in st.segments:
            for tid, w in zip(p.ids, p.ws, strict=True):
                if tid < seg.X.shape[1]:
                    a, b = seg.X.indptr[tid], seg.X.indptr[tid + 1]
                    acc[seg.X.indices[a:b] + seg.offset] += w * seg.X.data[a:b]
        ref = acc * st.arrays.inv_norm[: st.n_slots]
        hits = idx.search(q, 10)
        assert hits
        for h in hits:
            assert h.score == float(ref[idx.loc[h.key]]) / p.qn
        expected = sorted(
            (k for k, s in idx.loc.items() if ref[s] > 0), key=lambda k: -ref[idx.loc[k]]
        )
        assert [h.key for h in hits] == expected[:10]


def test_merging_the_newest_segments_keeps_every_score_and_bounds_the_segments() -> None:
    """Uploads append a segment each; past `MAX_SEGMENTS` the newest are merged (sizes
    growing toward the oldest). Scores and explanations must come out bit for bit as on
    the same documents left unmerged; the head (the fitted segment) is never merged."""
    import random

    from services.matching.domain import index as index_module

    rng = random.Random(5)
    words = ["LED", "恒流", "驱动", "电路", "正极", "材料", "锂电池", "地膜", "降解", "开关电源",
             "控制芯片", "围巾", "针织", "升压", "散热", "磷酸铁锂"]  # fmt: skip

    def doc(i: int) -> dict[str, float]:
        return analyse_patent(f"一种{rng.choice(words)}{i}", "".join(rng.sample(words, 5)))

    batches = [[(k, doc(k), Attrs(pooled=True)) for k in range(b * 7, b * 7 + rng.randint(1, 7))]
               for b in range(1, 40)]  # fmt: skip
    queries = [analyse_query(" ".join(rng.sample(words, 3))) for _ in range(12)]

    def run(max_segments: int) -> tuple[MatchIndex, list[list[tuple[int, float, tuple]]]]:
        old, index_module.MAX_SEGMENTS = index_module.MAX_SEGMENTS, max_segments
        try:
            idx = MatchIndex(refit_min=10_000)
            idx.build((i, bag(i), Attrs(pooled=True)) for i in DOCS)
            for batch in batches:
                idx.upsert_many(batch)
                assert len(idx._state.segments) <= max_segments
            idx.remove([8, 15])
        finally:
            index_module.MAX_SEGMENTS = old
        found = [[(h.key, h.score, tuple(h.terms)) for h in idx.search(q, 20, explain=5)]
                 for q in queries]  # fmt: skip
        return idx, found

    merged, found = run(4)
    unmerged, expected = run(1_000)
    assert len(unmerged._state.segments) == 40
    assert found == expected
    assert any(found), "the queries should find documents"
    assert len(merged._state.segments) <= 4
    assert merged._state.segments[0].n == len(DOCS)  # the fitted head is never merged
