"""Explanations: the terms that contributed most and a highlighted abstract snippet."""

from __future__ import annotations

import html
import re
from bisect import bisect_left, bisect_right

from services.matching.domain.text import normalise

# What html.escape changes: a window without any is its own escape (most abstracts).
_HTML_SPECIAL = re.compile(r"[&<>\"']")


def _escape(text: str) -> str:
    return html.escape(text) if _HTML_SPECIAL.search(text) else text


def find_terms(text: str, words: list[str]) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) of `words` in `text`, scanning left to right and taking
    the longest word at each position: what `re.finditer("|".join(words sorted longest
    first))` finds, without compiling a pattern per hit (compiling was most of a
    ranking request's time)."""
    longest: dict[int, int] = {}
    for w in words:
        n = len(w)
        i = text.find(w)
        while i >= 0:
            if longest.get(i, 0) < n:
                longest[i] = n
            i = text.find(w, i + 1)
    spans = []
    end = 0
    for i in sorted(longest):
        if i >= end:
            end = i + longest[i]
            spans.append((i, end))
    return spans


def snippet(text: str, terms: list[str], width: int = 120) -> str:
    """The `width`-character window of `text` that holds the most query terms, HTML-escaped,
    with each term wrapped in <mark>…</mark>."""
    if not text:
        return ""
    words = sorted({t for t in terms if t}, key=len, reverse=True)
    if not words:
        return html.escape(text[:width]) + ("…" if len(text) > width else "")
    norm = normalise(text)
    lowered = norm if len(norm) == len(text) else text.lower()
    spans = find_terms(lowered, words)
    if not spans:
        return html.escape(text[:width]) + ("…" if len(text) > width else "")
    # Spans do not overlap and are sorted, so both their starts and their ends ascend: the
    # spans inside [start, start + width] are the run between two bisections.
    starts = [a for a, _ in spans]
    ends = [b for _, b in spans]
    best, best_n = 0, -1
    for s in starts:
        start = max(0, s - 10)
        n = max(0, bisect_right(ends, start + width) - bisect_left(starts, start))
        if n > best_n:
            best, best_n = start, n
    start, end = best, min(len(text), best + width)
    out, pos = [], start
    for a, b in spans:
        if a < start or b > end or a < pos:
            continue
        out.append(_escape(text[pos:a]))
        out.append(f"<mark>{_escape(text[a:b])}</mark>")
        pos = b
    out.append(_escape(text[pos:end]))
    return ("…" if start > 0 else "") + "".join(out) + ("…" if end < len(text) else "")
