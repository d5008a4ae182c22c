"""Patent terms and pool eligibility."""

from __future__ import annotations

from datetime import date

from shared import bizdate
from shared.appno import PatentType
from shared.regions import SUPPLIER_KINDS

# Designs filed on/after the 4th amendment of the Patent Law (2021-06-01) last 15 years.
DESIGN_15Y_FROM = date(2021, 6, 1)


def term_years(patent_type: str, application_date: date) -> int:
    if patent_type in (PatentType.INVENTION, PatentType.PCT_INVENTION):
        return 20
    if patent_type == PatentType.DESIGN:
        return 15 if application_date >= DESIGN_15Y_FROM else 10
    return 10  # utility models, national or PCT


def expiry_date(patent_type: str, application_date: date | None) -> date | None:
    """The day the term ends (filing date + term). PCT phases count from the international filing date."""
    if application_date is None:
        return None
    years = term_years(patent_type, application_date)
    try:
        return application_date.replace(year=application_date.year + years)
    except ValueError:  # 29 February
        return application_date.replace(year=application_date.year + years, day=28)


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
