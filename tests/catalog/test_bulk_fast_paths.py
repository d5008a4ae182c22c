"""The bulk upload's fast paths give what the plain code gives, record for record.

Each fast path (NFKC by table, industry tags without hits, one orjson pass for NULs,
COPY rows and feed payloads made once, validation in a worker process) is checked
against the straightforward computation it replaces, on the demo pool's real texts and
on awkward input.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.catalog.domain import bulk_pool
from services.catalog.domain.bulk import _nul_field, validate_records
from services.catalog.domain.feed_payloads import patent_payload_from
from services.catalog.domain.industry import _branch_key, branches, explain, tag_industries
from services.catalog.domain.ingest import ROW_COLUMNS, prepare
from services.catalog.schemas import PatentIn
from shared.appno import check_char
from shared.guards import nul_field
from shared.textfold import nfkc
from tests.factories import offer, patent

DEMO = Path(__file__).resolve().parents[2] / "services/catalog/demo/demo_patents.jsonl"


def demo() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DEMO.read_text("utf-8").splitlines() if line.strip()]


AWKWARD = [
    "",
    "ａｂｃ，；：（１２３）％",  # full-width forms only
    "Ａ\u0301",  # full-width A then a combining acute: NFKC composes them into Á
    "\u1100\u1161\u11a8",  # Hangul jamo: NFKC composes a syllable
    "𝐀𝟏 ﬁ ℃ ① ⑴ Ⅲ …",  # above the BMP, ligatures, symbols that expand
    "e\u0301\u0323",  # combining marks out of canonical order
    "\u3000全角空格\uff5e",
    "plain ascii, nothing to do",
]


@pytest.mark.parametrize("text", AWKWARD)
def test_nfkc_equals_unicodedata_on_awkward_text(text: str) -> None:
    assert nfkc(text) == unicodedata.normalize("NFKC", text)


def test_nfkc_equals_unicodedata_on_the_demo_pool() -> None:
    for r in demo():
        for text in (r["title"], r.get("abstract") or "", r.get("claims") or ""):
            assert nfkc(text) == unicodedata.normalize("NFKC", text)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40))
def test_nfkc_equals_unicodedata_on_any_text(text: str) -> None:
    assert nfkc(text) == unicodedata.normalize("NFKC", text)


def test_industry_tags_are_the_branches_of_explain() -> None:
    # Codes from the concordance's own patterns (subclass-only ones too), three a record.
    codes = sorted(
        {f"{p.subclass}{p.group}/{p.subgroup or '00'}" if p.group else p.subclass
         for b in branches() for r in b.rules for p in r.patterns if len(p.subclass) == 4}
    )  # fmt: skip
    tagged = 0
    for i, r in enumerate(demo()):
        text = f"{r['title']} {r.get('abstract') or ''} {r.get('claims') or ''}"
        mine = [codes[(i * 7 + j * 13) % len(codes)] for j in range(3)]
        expected = sorted({h.branch_no for h in explain(mine, text)}, key=_branch_key)
        assert tag_industries(mine, text) == expected
        tagged += bool(expected)
    assert tagged > 300  # of 666: the comparison is not between empty lists


@pytest.mark.parametrize(
    "raw",
    [
        {"title": "ok", "patentees": ["天津大学"]},
        {"title": "a\x00b"},
        {"ti\x00tle": "x"},
        {"patentees": ["天津大学", "x\x00"]},
        {"nested": {"deeper": [1, {"k": "\x00"}]}},
        {"title": "a literal \\u0000, not a NUL"},  # the quick check's false alarm
        {"n": 2**70, "title": "\x00"},  # orjson cannot write it: the slow way
        {"title": "\ud800 lone surrogate"},
    ],
)
def test_quick_nul_check_agrees_with_nul_field(raw: dict[str, Any]) -> None:
    assert _nul_field(raw) == nul_field(raw)


def test_check_char_agrees_with_the_published_rule() -> None:
    def reference(digits: str) -> str:
        r = sum(int(d) * (2 + i % 8) for i, d in enumerate(digits)) % 11
        return "X" if r == 10 else str(r)

    for n in range(0, 10**12, 10**12 // 20_011):
        for digits in (f"{n:012d}", f"{n % 10**8:08d}"):
            assert check_char(digits) == reference(digits)
    arabic = "٢٠٢١١٠١٢٣٤٥٦"  # \d matches other decimal digits too
    assert check_char(arabic) == reference(arabic)


def test_copy_rows_and_feed_payloads_equal_the_plain_encoding() -> None:
    undated = {"application_date": None, "grant_date": None}  # no dates: JSON nulls
    for i, r in enumerate(demo()[:200]):
        body = {**r, "legal_status": "pending", **(undated if i % 3 == 0 else {})}
        p = prepare(PatentIn.model_validate(body)).encode()
        assert p.row == tuple(
            orjson.dumps(p.values[c]).decode()
            if c in ("ipc_codes", "industries", "patentees", "inventors")
            else p.values[c]
            for c in ROW_COLUMNS
        )
        for pid, version, owners in ((1, 1, [7]), (2**40, 3, [9, 2, 5]), (5, 2, [])):
            assert (
                p.payload_json(pid, version, owners)
                == orjson.dumps(patent_payload_from(p.values, pid, version, owners)).decode()
            )


def mixed_records() -> list[tuple[int, dict[str, Any]]]:
    good = [patent("天津大学") for _ in range(30)]
    bad: list[dict[str, Any]] = [
        {"title": "x"},
        patent("天津大学", application_number="202110123456.0"),
        patent("天津大学", ipc_codes=["not an ipc"]),
        patent("天津大学", grant_date=None),
        patent("天津大学", application_date="2018-01-01"),
        patent("天津大学", title="a\x00b"),
        {**patent("天津大学"), **offer(modes=["bartering"])},
        {"_not_an_object": 5},
        {"_extra_cells": 2},
    ]
    with_offer = [{**patent("天津大学"), **offer()}]
    return list(enumerate(good + bad + with_offer, start=1))


def report(result: tuple[list[Any], list[Any]]) -> tuple[list[Any], list[Any]]:
    good, bad = result
    return [(row, p.values, list(p.values), p.offer) for row, p in good], [o.to_dict() for o in bad]


def test_validation_in_a_worker_process_gives_the_same_report() -> None:
    records = mixed_records()
    here = validate_records(records)
    assert len(here[1]) == 9  # the bad ones are rejected, with their reasons
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        packed = pool.submit(bulk_pool.validate_packed, records).result(timeout=120)
    there = bulk_pool.unpack(packed)
    assert report(there) == report(here)
    # Encoded in the worker, dates and all, as the writer would have encoded them.
    for (_, p), (_, q) in zip(there[0], here[0], strict=True):
        assert p.row is not None and p.payload_parts is not None
        assert (p.row, p.payload_parts) == (q.encode().row, q.payload_parts)
        assert [type(v) for v in p.row] == [type(v) for v in q.row or ()]


def test_offload_uses_the_worker_once_it_is_ready() -> None:
    records = mixed_records()

    async def run() -> tuple[Any, Any, int]:
        offload = bulk_pool.offload(1)
        first = await offload(validate_records, records)  # the worker is still starting
        pool, ready = bulk_pool._worker_pool()
        worker = await asyncio.wrap_future(ready)
        second = await offload(validate_records, records)
        return first, second, worker

    try:
        first, second, worker = asyncio.run(run())
    finally:
        bulk_pool.shutdown()
    assert worker != multiprocessing.current_process().pid
    assert report(first) == report(second) == report(validate_records(records))
