"""Explanations: the terms that contributed most and a highlighted abstract snippet."""

from __future__ import annotations

import html
import re

from services.matching.domain.text import normalise


def snippet(text: str, terms: list[str], width: int = 120) -> str:
    """The `width`-character window of `text` that holds the most query terms, HTML-escaped,
    with each term wrapped in <mark>…</mark>."""
    if not text:
        return ""
    words = sorted({t for t in terms if t}, key=len, reverse=True)
    if not words:
        return html.escape(text[:width]) + ("…" if len(text) > width else "")
    lowered = normalise(text) if len(normalise(text)) == len(text) else text.lower()
    pattern = re.compile("|".join(re.escape(w) for w in words))
    spans = [(m.start(), m.end()) for m in pattern.finditer(lowered)]
    if not spans:
        return html.escape(text[:width]) + ("…" if len(text) > width else "")
    best, best_n = 0, -1
    for s, _ in spans:
        start = max(0, s - 10)
        n = sum(1 for a, b in spans if a >= start and b <= start + width)
        if n > best_n:
            best, best_n = start, n
    start, end = best, min(len(text), best + width)
    out, pos = [], start
    for a, b in spans:
        if a < start or b > end or a < pos:
            continue
        out.append(html.escape(text[pos:a]))
        out.append(f"<mark>{html.escape(text[a:b])}</mark>")
        pos = b
    out.append(html.escape(text[pos:end]))
    return ("…" if start > 0 else "") + "".join(out) + ("…" if end < len(text) else "")
