"""Is a patent in force on a deal's date? A deal on one that is not is refused, unless a
bureau records it with an explicit override: then it is kept, excluded from every count,
and listed by `GET /v1/consistency`.

Judged from the catalog's data on the replica: the term (filing date + 20 years for an
invention, 10 for a utility model, 10 or 15 for a design; the catalog's `expiry_date`
when it sends one) and the legal status. A patent invalidated, withdrawn or rejected
was never in force. A lapsed patent (annual fees unpaid) carries no lapse date in the
catalog, so any deal on it is refused: the bureau overrides when it knows better.
A pending application can be assigned or licensed (its application right) and passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from services.indicators.models import Deal, Patent
from shared.appno import InvalidNumber, parse_application_number
from shared.auth import Principal, Role
from shared.errors import Forbidden, Unprocessable
from shared.i18n import N_
from shared.patent_term import expiry_date, term_years

NEVER_IN_FORCE = ("invalidated", "withdrawn", "rejected")
OVERRIDE_ROLES = (Role.ADMIN, Role.CITY_BUREAU, Role.DISTRICT_BUREAU)
TYPE_NAMES = {"invention": N_("invention"), "pct_invention": N_("invention"),
              "utility_model": N_("utility model"), "pct_utility_model": N_("utility model"),
              "design": N_("design")}  # fmt: skip


def term_end(patent: Patent) -> date | None:
    if patent.expiry_date is not None:
        return patent.expiry_date
    if patent.patent_type and patent.application_date:
        return expiry_date(patent.patent_type, patent.application_date)
    return None


def latest_term_end(patent: Patent) -> tuple[str, int, date] | None:
    """Without a filing date (a replica row from before the catalog sent one), the
    application number still gives the type and the filing year: the term ended by the
    end of (filing year + term) at the latest. Returns (type, filing year, that day)."""
    try:
        number = parse_application_number(patent.application_number)
    except InvalidNumber:
        return None
    ptype, year = number.patent_type.value, number.filing_year
    years = term_years(ptype, date(year, 12, 31))  # the longest term a filing that year has
    return ptype, year, date(year + years, 12, 31)


def not_in_force(patent: Patent, on: date) -> str | None:
    """Why the patent was not in force on `on`; None when it was (or may have been)."""
    status = patent.legal_status or ""
    if status in NEVER_IN_FORCE:
        return N_(f"patent {patent.application_number} was never in force (legal status: {status})")
    end = term_end(patent)
    if end is not None and end <= on:
        ptype = patent.patent_type or ""
        if patent.application_date:
            years = term_years(ptype, patent.application_date)
            return N_(
                f"patent {patent.application_number} was not in force on {on.isoformat()}: "
                f"the {years}-year term of a {TYPE_NAMES.get(ptype, ptype)} filed on "
                f"{patent.application_date.isoformat()} ended on {end.isoformat()}"
            )
        return N_(
            f"patent {patent.application_number} was not in force on {on.isoformat()}: "
            f"its term ended on {end.isoformat()}"
        )
    if end is None and (bound := latest_term_end(patent)) is not None and bound[2] < on:
        ptype, year, last = bound
        return N_(
            f"patent {patent.application_number} was not in force on {on.isoformat()}: "
            f"a {TYPE_NAMES.get(ptype, ptype)} filed in {year} was in force until "
            f"{last.isoformat()} at the latest"
        )
    if status == "lapsed":
        return N_(
            f"patent {patent.application_number} has lapsed (annual fees unpaid) and the "
            "catalog does not give the date; a bureau may record the deal with an override"
        )
    return None


def check_in_force(
    deal: Deal,
    patents: Sequence[Patent],
    on: date,
    principal: Principal,
    *,
    override: bool,
    override_reason: str | None,
) -> None:
    """Refuse (422, per patent) a deal on patents not in force on `on`, or mark an
    overridden one excluded. Call before the deal is written."""
    deal.excluded = False
    problems = [
        {"field": f"application_numbers[{i}]", "reason": reason}
        for i, p in enumerate(patents)
        if (reason := not_in_force(p, on)) is not None
    ]
    if not problems:
        if override:
            raise Unprocessable.field(
                "override_not_in_force", "every patent of the deal is in force; no override"
            )
        return
    if not override:
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in problems[:5])
        raise Unprocessable(detail, errors=problems)
    if principal.role not in OVERRIDE_ROLES:
        raise Forbidden("only a bureau or an admin records a deal on a patent not in force")
    deal.excluded = True
    deal.not_in_force_reason = "; ".join(e["reason"] for e in problems)
    deal.override_reason = override_reason


def check_activation(deal: Deal, patents: Sequence[Patent], on: date) -> None:
    """A registered deal taking effect: its patents must be in force on that day, unless
    the deal was recorded with an override (it stays excluded)."""
    if deal.excluded:
        return
    problems = [
        {"field": "effective_date", "reason": reason}
        for p in patents
        if (reason := not_in_force(p, on)) is not None
    ]
    if problems:
        raise Unprocessable("; ".join(e["reason"] for e in problems[:5]), errors=problems)
