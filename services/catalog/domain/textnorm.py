"""Text normalisation for keyword search (full-width -> half-width, lower case)."""

from __future__ import annotations

import unicodedata

from shared.textfold import nfkc


def search_text(title: str, abstract: str) -> str:
    return nfkc(f"{title}\n{abstract}").lower()


def normalize_query(q: str) -> str:
    return unicodedata.normalize("NFKC", q).lower().strip()
