"""Patent terms and pool eligibility."""

from __future__ import annotations

from datetime import date

from shared import bizdate
from shared.patent_term import DESIGN_15Y_FROM, expiry_date, term_years
from shared.regions import SUPPLIER_KINDS

__all__ = ["DESIGN_15Y_FROM", "expiry_date", "pool_ineligibility", "term_years"]


def pool_ineligibility(
    *,
    legal_status: str,
    expiry: date | None,
    owner_kinds: list[str],
    converted_by: list[str],
    today: date | None = None,
) -> list[str]:
    """Why a patent cannot be pooled; empty means it can."""
    today = today or bizdate.today()
    reasons = []
    if legal_status != "granted":
        reasons.append(f"not a granted, valid patent (legal status: {legal_status})")
    if expiry is not None and expiry <= today:
        reasons.append(f"its term ended on {expiry.isoformat()}")
    if not any(k in {s.value for s in SUPPLIER_KINDS} for k in owner_kinds):
        reasons.append("not owned by a university, research institute or state-owned enterprise")
    if converted_by:
        reasons.append(f"already converted (deal {', '.join(sorted(converted_by))})")
    return reasons
