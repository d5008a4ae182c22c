"""View-model functions and templates of the portal, without servers."""

from __future__ import annotations

from typing import Any

from services.portal import i18n
from services.portal.api.web import ENV
from services.portal.domain.dashboard import yearly_series
from services.portal.domain.uploads import rejected_csv
from services.portal.domain.views import filtered_note, highlight, offer_of


def test_highlight_marks_every_word_and_escapes_html() -> None:
    out = str(highlight("一种<b>锂电池</b>正极材料，电池寿命长", ["电池", "正极"], width=100))
    assert out.count("<mark>电池</mark>") == 2
    assert "<mark>正极</mark>" in out
    assert "&lt;b&gt;" in out and "<b>" not in out


def test_offer_terms_in_words() -> None:
    i18n.load_catalogues()
    i18n.set_locale("zh_CN")
    assert offer_of({"zero_price": True, "modes": ["assignment"]}).price == "0 元（免费转让）"  # type: ignore[union-attr]
    priced = offer_of({"price_cny": "50000.00", "negotiable": True, "modes": ["open_licence"]})
    assert priced is not None and priced.price == "¥ 50,000 （可议价）"
    assert priced.modes == ["开放许可"]
    assert offer_of(None) is None


def test_year_on_year_change() -> None:
    row = {
        "series": [
            {"year": 2021, "value": 2},
            {"year": 2022, "value": 3},
            {"year": 2023, "value": 0},
        ]
    }
    assert yearly_series(row) == {
        "years": [2021, 2022, 2023],
        "values": [2, 3, 0],
        "changes": [None, 50.0, -100.0],
    }


def test_filtered_out_in_its_possible_shapes() -> None:
    assert filtered_note(None) is None
    assert filtered_note(3) == {"count": 3, "hits": [], "by_filter": {}}
    assert filtered_note([{"application_number": "1"}])["count"] == 1  # type: ignore[index]
    note = filtered_note({"count": 4, "by_filter": {"zero_price": 4}})
    assert note is not None and note["count"] == 4 and note["by_filter"] == {"zero_price": 4}


def render_results(result: dict[str, Any]) -> str:
    i18n.load_catalogues()
    i18n.set_locale("zh_CN")
    return ENV.get_template("partials/problem_results.html").render(
        result=result, user=None, csrf="x", text="t", filters={}, industries=[],
        Markup=__import__("markupsafe").Markup,
    )  # fmt: skip


HIT = {
    "rank": 1, "score": 0.5, "application_number": "202110123456.7", "title": "一种电路",
    "patent_type": "invention", "ipc_codes": [], "industries": [], "owners": [],
    "offer": None,
    "explanation": {"terms": [{"term": "电路", "weight": 0.25}], "matched_ipc": ["H05B45"],
                    "matched_industries": [], "snippet": "一种<mark>电路</mark>"},
}  # fmt: skip


def test_confidence_band_and_filtered_out_are_shown_when_present() -> None:
    html = render_results(
        {
            "hits": [{**HIT, "confidence": "strong"}],
            "query_terms": ["电路"],
            "filtered_out": {"count": 2},
        }
    )
    assert 'class="band band-strong"' in html and "高度匹配" in html
    assert "您的筛选条件排除了 2 件得分更高的专利" in html
    assert "<mark>电路</mark>" in html and "50%" in html and "IPC H05B45" in html


def test_results_render_without_the_new_fields() -> None:
    html = render_results({"hits": [HIT], "query_terms": ["电路"]})
    assert "band" not in html and "filtered-out" not in html
    assert "一种电路" in html


def test_rejected_rows_keep_the_original_columns() -> None:
    i18n.set_locale("zh_CN")
    data = "申请号,专利名称\n202110123456.7,好\n202110123456.1,坏\n".encode("gb18030")
    rows = [
        {"row": 2, "status": "accepted"},
        {
            "row": 3,
            "status": "rejected",
            "errors": [{"field": "application_number", "reason": "bad"}],
        },
    ]
    out = rejected_csv(data, "csv", rows, "错误原因").decode("utf-8-sig").splitlines()
    assert out == ["申请号,专利名称,错误原因", "202110123456.1,坏,申请号: bad"]


def test_figures_are_written_the_way_people_read_them() -> None:
    from services.portal.api.web import _number

    assert _number(3000) == "3,000"
    assert _number("1234.5000") == "1,234.5"  # decimals as the indicators API sends them
    assert _number(None) == "—"


def test_rejected_rows_of_an_xlsx_upload() -> None:
    import io

    from openpyxl import Workbook

    i18n.set_locale("zh_CN")
    wb = Workbook()
    ws = wb.active
    ws.append(["申请号", "专利名称", "IPC分类号"])
    ws.append(["202110123456.7", "好", "H01M"])
    ws.append(["201919999001.1", "坏", "H01M-10"])
    buf = io.BytesIO()
    wb.save(buf)
    rows = [
        {"row": 3, "status": "rejected", "errors": [{"field": "ipc_codes[0]", "reason": "bad"}]}
    ]
    out = rejected_csv(buf.getvalue(), "xlsx", rows, "错误原因").decode("utf-8-sig").splitlines()
    assert out == [
        "申请号,专利名称,IPC分类号,错误原因",
        "201919999001.1,坏,H01M-10,IPC 分类号: bad",
    ]
