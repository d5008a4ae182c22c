"""NFKC for long Chinese text, exact and about four times faster than `unicodedata`.

Both the catalog (search text of every uploaded patent) and matching (query analysis and
the snippets of every answer) fold full-width forms this way.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache


@lru_cache(maxsize=1)
def _bmp_table() -> tuple[re.Pattern[str], dict[str, str]]:
    """Every BMP character that NFKC changes, with what it becomes (about 3,000; 20 ms)."""
    table: dict[str, str] = {}
    for cp in range(0x10000):
        c = chr(cp)
        if not 0xD800 <= cp <= 0xDFFF and not unicodedata.is_normalized("NFKC", c):
            table[c] = unicodedata.normalize("NFKC", c)
    spans: list[list[int]] = []
    for cp in sorted(map(ord, table)):
        if spans and spans[-1][1] == cp - 1:
            spans[-1][1] = cp
        else:
            spans.append([cp, cp])
    # All below U+10000, so re compiles the class to a bitmap: one lookup per character.
    cls = "".join(re.escape(chr(a)) + ("" if a == b else "-" + re.escape(chr(b))) for a, b in spans)
    return re.compile(f"[{cls}]"), table


def nfkc(s: str) -> str:
    """`unicodedata.normalize("NFKC", s)`, about 4x faster on Chinese prose.

    Such prose is NFKC but for a few full-width marks (，；：（）％) per sentence, and the
    full normalisation of a string that is not already normal costs ~0.3 µs a character.
    Replacing each changed character by its own NFKC keeps the text's NFKD, so when the
    result is itself normal it *is* NFKC(s) (the form is unique per equivalence class);
    when it is not (combining marks, Hangul jamo, characters above the BMP), the full
    normalisation decides."""
    if unicodedata.is_normalized("NFKC", s):
        return s
    pattern, table = _bmp_table()
    mapped = pattern.sub(lambda m: table[m[0]], s)
    if unicodedata.is_normalized("NFKC", mapped):
        return mapped
    return unicodedata.normalize("NFKC", s)


def prepare() -> None:
    """Build the table now (a worker process warming up before its first record)."""
    _bmp_table()
