"""Codes shared with the catalog: industries (SEI branches), IPC, modes, patent types."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

from services.matching.domain.index import MODES, PATENT_TYPES
from shared.ipc import normalize_ipc  # pure function, shared on purpose

POOLED = ("listed", "negotiating")
DEAD_LEGAL_STATUSES = frozenset({"lapsed", "expired", "invalidated", "withdrawn", "rejected"})


@lru_cache(maxsize=1)
def branches() -> list[dict[str, str]]:
    """The SEI catalogue (branch_no, branch_name, industry_no, industry_name)."""
    data = resources.files("services.catalog.data").joinpath("sei_ipc_concordance_2021.json")
    raw = json.loads(data.read_text(encoding="utf-8"))
    return [
        {k: b[k] for k in ("branch_no", "branch_name", "industry_no", "industry_name")}
        for b in raw["branches"]
    ]


@lru_cache(maxsize=1)
def _bit_of_branch() -> dict[str, int]:
    return {b["branch_no"]: i for i, b in enumerate(branches())}


def industry_known(code: str) -> bool:
    return code in _bit_of_branch() or any(b["industry_no"] == code for b in branches())


def industry_name(code: str) -> str | None:
    for b in branches():
        if b["branch_no"] == code:
            return b["branch_name"]
        if b["industry_no"] == code:
            return b["industry_name"]
    return None


def industry_mask(codes: list[str] | tuple[str, ...]) -> int:
    """Bits of the branches named, an industry number standing for all its branches."""
    bits = _bit_of_branch()
    mask = 0
    for code in codes:
        if code in bits:
            mask |= 1 << bits[code]
        else:
            for b in branches():
                if b["industry_no"] == code:
                    mask |= 1 << bits[b["branch_no"]]
    return mask


def industries_match(patent_industries: list[str], code: str) -> bool:
    return any(i == code or i.split(".")[0] == code for i in patent_industries)


def mode_mask(modes: list[str]) -> int:
    return sum(1 << MODES.index(m) for m in set(modes) if m in MODES)


def patent_type_code(patent_type: str | None) -> int:
    base = (patent_type or "").removeprefix("pct_")
    return PATENT_TYPES.index(base) if base in PATENT_TYPES else 0


def patent_type_mask(types: list[str]) -> int:
    return sum(1 << patent_type_code(t) for t in types)


def validate_ipc(code: str) -> str:
    return normalize_ipc(code)


def ipc_matches(hint: str, codes: Sequence[str]) -> list[str]:
    """The patent's IPC codes that fall under a hint (subclass, group or full symbol)."""
    h = hint.replace(" ", "").upper()
    return [c for c in codes if c.upper().startswith(h.split("/")[0] if "/" not in h else h)]
