"""The fast NFKC (`shared.textfold.nfkc`, used by matching and the catalog) is NFKC: same output as `unicodedata` on any text."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from services.matching.domain.text import normalise
from shared.textfold import nfkc

# Characters where a one-by-one swap is not the whole story: halfwidth kana with voicing
# marks that compose, combining accents, multi-character forms, Hangul jamo, ohm/angstrom.
TRICKY = "，；：（）～％\u3000ｶﾞﾟ\u0301\u0344e①ﬁ㎡Å\u212b\u2126\u1100\u1161가ＬＥＤ　Ⅰ\U0001d400"


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=st.sampled_from(TRICKY) | st.characters(), max_size=40))
def test_nfkc_is_unicodedata_nfkc(text: str) -> None:
    assert nfkc(text) == unicodedata.normalize("NFKC", text)


def test_nfkc_on_patent_text() -> None:
    text = "本发明公开了一种ＬＥＤ恒流（升压）驱动电路，输出电流≤５Ａ；效率９５％：①稳定ｶﾞ。"
    assert nfkc(text) == unicodedata.normalize("NFKC", text)
    assert normalise(text) == "本发明公开了一种led恒流(升压)驱动电路,输出电流≤5a;效率95%:1稳定ガ。"
