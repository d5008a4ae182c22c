"""View-models: what the pages show, built from the services' JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from services.portal.domain.labels import label


def query_words(q: str) -> list[str]:
    """The catalog requires every whitespace-separated word to occur; highlight the same."""
    return [w for w in re.split(r"\s+", q.strip()) if w][:10]


def highlight(text: str, words: list[str], width: int = 120) -> Markup:
    """A window of `text` around the first word found, HTML-escaped, words in <mark>."""
    text = re.sub(r"\s+", " ", text or "").strip()
    if not text:
        return Markup("")
    lower = text.lower()
    hits = [lower.find(w.lower()) for w in words if w]
    hits = [h for h in hits if h >= 0]
    start = max(0, min(hits) - width // 4) if hits else 0
    piece = text[start : start + width]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + width < len(text) else ""
    if not words:
        return Markup(escape(prefix + piece + suffix))
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.I)
    out: list[str] = [str(escape(prefix))]
    pos = 0
    for m in pattern.finditer(piece):
        out.append(str(escape(piece[pos : m.start()])))
        out.append(f"<mark>{escape(m.group(0))}</mark>")
        pos = m.end()
    out.append(str(escape(piece[pos:])))
    out.append(str(escape(suffix)))
    return Markup("".join(out))


@dataclass
class Offer:
    """Offer terms of a listing, said the way an SME reads them."""

    status: str
    modes: list[str]
    price: str  # "0 元", "¥ 50,000", "面议"
    zero_price: bool
    use_first_pay_later: bool
    deferred_licence_fee: bool
    negotiable: bool
    note: str = ""

    @property
    def pooled(self) -> bool:
        return self.status in ("listed", "negotiating")


def offer_of(listing: dict[str, Any] | None) -> Offer | None:
    from services.portal.i18n import gettext

    if not listing:
        return None
    price_raw = listing.get("price_cny")
    if listing.get("zero_price"):
        price = gettext("0 yuan (free transfer)")
    elif price_raw not in (None, ""):
        amount = float(price_raw)
        price = f"¥ {amount:,.0f}" + (
            " " + gettext("(negotiable)") if listing.get("negotiable") else ""
        )
    else:
        price = gettext("Price negotiable")
    return Offer(
        status=str(listing.get("status") or ""),
        modes=[label(m, "mode") for m in listing.get("modes") or []],
        price=price,
        zero_price=bool(listing.get("zero_price")),
        use_first_pay_later=bool(listing.get("use_first_pay_later")),
        deferred_licence_fee=bool(listing.get("deferred_licence_fee")),
        negotiable=bool(listing.get("negotiable")),
        note=str(listing.get("note") or ""),
    )


def match_text_of(patent: dict[str, Any]) -> str:
    """What 'similar patents' asks the matcher: the patent's own title and abstract."""
    return f"{patent.get('title', '')}\n{(patent.get('abstract') or '')[:1200]}"


def filtered_note(value: Any) -> dict[str, Any] | None:
    """The matching service's `filtered_out` (better-scoring patents the filters removed),
    in whatever of its reasonable shapes: a count, a list of hits, or an object with a
    count and/or the hits and a per-filter tally."""
    if not value:
        return None
    if isinstance(value, int):
        return {"count": value, "hits": [], "by_filter": {}}
    if isinstance(value, list):
        return {"count": len(value), "hits": value[:5], "by_filter": {}}
    if isinstance(value, dict):
        hits = value.get("hits") or value.get("patents") or value.get("items") or []
        count = value.get("count")
        if count is None:
            count = value.get("total", len(hits))
        by_filter = value.get("by_filter") or value.get("reasons") or {}
        if not count and not hits:
            return None
        return {
            "count": count,
            "hits": hits[:5] if isinstance(hits, list) else [],
            "by_filter": by_filter if isinstance(by_filter, dict) else {},
        }
    return None
