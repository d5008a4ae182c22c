"""Plan definitions (data files in services/indicators/plans/) and their progress.

Indicator kinds:
- cumulative_count: the total from the plan's start to the period's end;
- annual_value: the value in (or at the end of) the year;
- growth_rate: growth of an annual base series, in %; `actual` is the average annual
  growth (CAGR) from the plan's base year, the year-on-year growth is in the series;
- share: a percentage reported for the year.

Status: met (actual >= target) / on_track (the projection reaches it) / at_risk (the
projection reaches 90 % of it) / behind. A closed year is met or behind. An indicator
with a target but no value to judge (nothing reported yet, or a growth rate whose base
year is 0 or missing) is `no_data`; `no_target` is kept for indicators without a target.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.indicators.domain.common import money_text, num, today
from services.indicators.domain.progress_cache import ProgressCache
from services.indicators.domain.rules import RULES, Window
from services.indicators.models import ReportedFigure
from shared.errors import NotFound
from shared.regions import TIANJIN_DISTRICTS

PLANS_DIR = Path(__file__).resolve().parent.parent / "plans"
KINDS = ("cumulative_count", "annual_value", "growth_rate", "share")
ADDITIVE_UNITS = {"件", "家", "个", "项", "单", "人", "次", "元", "万元", "份"}
# Amounts are exact decimals end to end: summed as Decimal, reported as decimal strings
# with two places ("130000.00"), written to XLSX as numbers formatted 0.00.
MONEY_UNITS = {"元", "万元"}
AT_RISK_FACTOR = 0.9


@dataclass(frozen=True)
class Indicator:
    code: str
    name_zh: str
    name_en: str
    unit: str
    kind: str
    source: str  # computed | reported
    targets: dict[int, float | None]
    target_notes: dict[int, str]
    section: str
    quote: str
    rule: str | None = None
    reporter: str | None = None
    base_unit: str | None = None
    rising: bool = False
    row: str | None = None
    national: str | None = None
    note: str | None = None
    levels: tuple[str, ...] = ()

    def target_for(self, year: int, deadline_year: int) -> float | None:
        """The year's target; past the last numeric year (验收/完成), the last one."""
        if year in self.targets and self.targets[year] is not None:
            return self.targets[year]
        numeric = sorted(y for y, v in self.targets.items() if v is not None)
        if numeric and numeric[-1] < year <= deadline_year:
            return self.targets[numeric[-1]]
        return None

    def final_target(self, deadline_year: int) -> float | None:
        numeric = sorted(y for y, v in self.targets.items() if v is not None)
        return self.targets[numeric[-1]] if numeric else None

    @property
    def money(self) -> bool:
        """Its values (or, for a growth rate, its base values) are amounts of money."""
        return (self.base_unit if self.kind == "growth_rate" else self.unit) in MONEY_UNITS

    @property
    def additive(self) -> bool:
        return self.kind in ("cumulative_count", "annual_value") and self.unit in ADDITIVE_UNITS


@dataclass(frozen=True)
class Plan:
    code: str
    name_zh: str
    name_en: str
    scope: str
    district: str | None
    source_file: str
    start: date
    deadline: date
    base_year: int
    years: tuple[int, ...]
    notes: str
    indicators: tuple[Indicator, ...]
    budget_cny: int | None = None
    by_code: dict[str, Indicator] = field(default_factory=dict, compare=False, hash=False)

    def indicator(self, code: str) -> Indicator:
        ind = self.by_code.get(code)
        if ind is None:
            raise NotFound(f"plan {self.code} has no indicator {code}")
        return ind

    def summary(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "scope": self.scope,
            "district": self.district,
            "source_file": self.source_file,
            "start": self.start.isoformat(),
            "deadline": self.deadline.isoformat(),
            "base_year": self.base_year,
            "years": list(self.years),
            "budget_cny": self.budget_cny,
            "notes": self.notes,
            "indicator_count": len(self.indicators),
        }


def _indicator(d: dict[str, Any], plan_code: str) -> Indicator:
    kind = d["kind"]
    if kind not in KINDS:
        raise ValueError(f"{plan_code}/{d['code']}: unknown kind {kind}")
    source = d["source"]
    if source == "computed" and d.get("rule") not in RULES:
        raise ValueError(f"{plan_code}/{d['code']}: unknown rule {d.get('rule')}")
    if source not in ("computed", "reported"):
        raise ValueError(f"{plan_code}/{d['code']}: unknown source {source}")
    return Indicator(
        code=d["code"],
        name_zh=d["name_zh"],
        name_en=d["name_en"],
        unit=d["unit"],
        kind=kind,
        source=source,
        targets={int(y): v for y, v in (d.get("targets") or {}).items()},
        target_notes={int(y): v for y, v in (d.get("target_notes") or {}).items()},
        section=d.get("section", ""),
        quote=d.get("quote", ""),
        rule=d.get("rule"),
        reporter=d.get("reporter"),
        base_unit=d.get("base_unit"),
        rising=bool(d.get("rising")),
        row=d.get("row"),
        national=d.get("national"),
        note=d.get("note"),
        levels=tuple(d[k] for k in ("level1", "level2", "level3") if d.get(k)),
    )


def load_plan(path: Path) -> Plan:
    d = json.loads(path.read_text(encoding="utf-8"))
    inds = tuple(_indicator(i, d["code"]) for i in d["indicators"])
    codes = [i.code for i in inds]
    if len(set(codes)) != len(codes):
        raise ValueError(f"{path.name}: duplicate indicator codes")
    if d.get("district") and d["district"] not in TIANJIN_DISTRICTS:
        raise ValueError(f"{path.name}: unknown district {d['district']}")
    return Plan(
        code=d["code"],
        name_zh=d["name_zh"],
        name_en=d["name_en"],
        scope=d["scope"],
        district=d.get("district"),
        source_file=d["source_file"],
        start=date.fromisoformat(d["start"]),
        deadline=date.fromisoformat(d["deadline"]),
        base_year=int(d["base_year"]),
        years=tuple(d["years"]),
        notes=d.get("notes", ""),
        indicators=inds,
        budget_cny=d.get("budget_cny"),
        by_code={i.code: i for i in inds},
    )


@cache
def all_plans() -> dict[str, Plan]:
    plans = [load_plan(p) for p in sorted(PLANS_DIR.glob("*.json"))]
    return {p.code: p for p in plans}


def get_plan(code: str) -> Plan:
    plan = all_plans().get(code)
    if plan is None:
        raise NotFound(f"no plan {code}; plans: {', '.join(all_plans())}")
    return plan


def scope_of(plan: Plan, district: str | None) -> str:
    """'city' or a district key. A district plan's scope is always its district."""
    if plan.district:
        if district and district != plan.district:
            raise NotFound(f"plan {plan.code} covers {plan.district} only")
        return plan.district
    if district and district not in TIANJIN_DISTRICTS:
        raise NotFound(f"unknown district {district}")
    return district or "city"


# --- progress ---------------------------------------------------------------------------


def _f(v: Decimal | float | None) -> float | None:
    return None if v is None else float(v)


Value = Decimal | float


def growth(cur: float | None, prev: float | None) -> float | None:
    if cur is None or prev is None or prev <= 0:
        return None
    return (cur / prev - 1.0) * 100.0


def cagr(cur: float | None, base: float | None, years: int) -> float | None:
    if cur is None or base is None or base <= 0 or years <= 0 or cur < 0:
        return None
    return ((cur / base) ** (1.0 / years) - 1.0) * 100.0


def rising_check(values: dict[int, float | None], years: list[int]) -> dict[str, Any]:
    """逐年递增: each closed year's value is above the year before."""
    not_rising = []
    for prev, cur in zip(years, years[1:], strict=False):
        a, b = values.get(prev), values.get(cur)
        if a is None or b is None or b <= a:
            not_rising.append(cur)
    return {"years": years, "rising": not not_rising and len(years) >= 2, "not_rising": not_rising}


def status_for(
    actual: float | None, target: float | None, projection: float | None, closed: bool
) -> str | None:
    if target is None:
        return None
    if actual is None:
        return "no_data"  # a target, but nothing to judge it by
    if actual >= target:
        return "met"
    if closed:
        return "behind"
    if projection is not None and projection >= target:
        return "on_track"
    if projection is not None and projection >= AT_RISK_FACTOR * target:
        return "at_risk"
    return "behind"


@dataclass
class Series:
    annual: dict[int, float | None]  # value in the year (events in the year, or year-end level)


async def computed_series(
    session: AsyncSession,
    plan: Plan,
    year: int,
    as_of: date,
    district: str | None,
    series_cache: ProgressCache | None = None,
) -> dict[str, dict[int, Value | None]]:
    """Run each rule the plan needs once, one after the other on the caller's session: each
    query takes a few milliseconds, and a session per rule (concurrently) cost a dozen
    pooled connections per request, which under load overflowed the pool into new
    connections and made deal writes queue for one (bench/load_mix.py). With
    `series_cache`, a rule's series is reused while the tables it read are unchanged."""
    rules = sorted({i.rule for i in plan.indicators if i.source == "computed" and i.rule})
    end = min(as_of, date(year, 12, 31))

    async def run(rule: str) -> dict[int, Value | None]:
        ind_kinds = {i.kind for i in plan.indicators if i.rule == rule}
        start = plan.start
        if "growth_rate" in ind_kinds:
            start = min(start, date(plan.base_year, 1, 1))
        w = Window(start=start, as_of=end, district=district)
        if series_cache is None:
            raw = await RULES[rule].fn(session, w)
        else:
            raw = await series_cache.series(session, (rule, w), lambda: RULES[rule].fn(session, w))
        # a computed rule with no records in a year counted 0 that year, not "unknown"
        series: dict[int, Value | None] = {y: Decimal(0) for y in range(start.year, end.year + 1)}
        series.update(raw)
        return series

    return {rule: await run(rule) for rule in rules}


async def reported_series(
    session: AsyncSession, plan: Plan, scope: str, year: int
) -> dict[str, dict[int, Value | None]]:
    """Current reported values per indicator and year (≤ year).

    City plan, city scope: the city-wide figure; without one, the sum of the districts'
    figures for additive indicators (counts and amounts, not rates or shares).
    """
    rows = (
        await session.execute(
            select(
                ReportedFigure.indicator_code,
                ReportedFigure.scope,
                ReportedFigure.year,
                ReportedFigure.value,
            ).where(
                ReportedFigure.plan_code == plan.code,
                ReportedFigure.current.is_(True),
                ReportedFigure.year <= year,
            )
        )
    ).all()
    own: dict[str, dict[int, Value | None]] = {}
    summed: dict[str, dict[int, Decimal]] = {}
    for code, sc, y, v in rows:
        if sc == scope:
            own.setdefault(code, {})[y] = Decimal(v)
        elif scope == "city" and plan.district is None and sc != "city":
            d = summed.setdefault(code, {})
            d[y] = d.get(y, Decimal(0)) + Decimal(v)
    for code, by_year in summed.items():
        ind = plan.by_code.get(code)
        if ind is None or not ind.additive:
            continue
        target = own.setdefault(code, {})
        for y, total in by_year.items():
            target.setdefault(y, total)
    return own


def _year_fraction(year: int, as_of: date) -> float:
    start, end = date(year, 1, 1), date(year, 12, 31)
    if as_of >= end:
        return 1.0
    if as_of < start:
        return 0.0
    return ((as_of - start).days + 1) / ((end - start).days + 1)


def indicator_progress(
    plan: Plan,
    ind: Indicator,
    annual_in: dict[int, Value | None] | dict[int, float | None],
    year: int,
    as_of: date,
    scope: str,
) -> dict[str, Any]:
    # Amounts stay Decimal (exact sums); everything else is computed in floats.
    exact = ind.money and ind.kind != "growth_rate"
    annual: dict[int, Any] = {
        y: None if v is None else (Decimal(str(v)) if exact else float(v))
        for y, v in annual_in.items()
    }
    zero: Any = Decimal(0) if exact else 0.0

    def out_value(v: Any) -> Any:
        return money_text(v) if exact else num(v)

    def out_base(v: Any) -> Any:  # the base series of a growth rate
        return money_text(v) if ind.money else num(v)

    deadline_year = plan.deadline.year
    period_end = (
        min(date(year, 12, 31), plan.deadline) if year == deadline_year else date(year, 12, 31)
    )
    closed = as_of >= period_end
    first_year = plan.start.year
    years = list(range(first_year, year + 1))
    frac = _year_fraction(year, as_of)
    reported = ind.source == "reported"
    show_targets = scope == (plan.district or "city")

    series: list[dict[str, Any]] = []
    actual: Any
    projection_year_end: Any = None
    projection_deadline: Any = None
    rising_values: dict[int, Any] = {}

    if ind.kind == "cumulative_count":
        running = zero
        cum: dict[int, Any] = {}
        last_reported: Any = None
        for y in years:
            v = annual.get(y)
            if reported:
                if v is not None:
                    last_reported = v
                cum[y] = last_reported
                increment = None
                if v is not None and y - 1 in cum and cum[y - 1] is not None:
                    increment = v - (cum[y - 1] or zero)
            else:
                running += v or zero
                cum[y] = running
                increment = v or zero
            rising_values[y] = increment
            series.append({"year": y, "value": out_value(increment),
                           "cumulative": out_value(cum[y]),
                           "target": ind.target_for(y, deadline_year) if show_targets else None})  # fmt: skip
        actual = cum.get(year)
        if actual is not None:
            elapsed = max(1, (min(as_of, period_end) - plan.start).days + 1)
            rate = actual / elapsed
            projection_year_end = actual + rate * max(0, (period_end - min(as_of, period_end)).days)
            projection_deadline = actual + rate * max(
                0, (plan.deadline - min(as_of, plan.deadline)).days
            )
    elif ind.kind == "growth_rate":
        base_years = list(range(plan.base_year, year + 1))
        for y in base_years:
            v = annual.get(y)
            prev = annual.get(y - 1)
            g = growth(v, prev)
            avg = cagr(v, annual.get(plan.base_year), y - plan.base_year)
            rising_values[y] = v
            if y >= first_year:
                series.append({"year": y, "base_value": out_base(annual_in.get(y)), "growth": num(g),
                               "average_growth": num(avg),
                               "target": ind.target_for(y, deadline_year) if show_targets else None})  # fmt: skip
            else:
                series.append({"year": y, "base_value": out_base(annual_in.get(y)), "growth": None,
                               "average_growth": None, "target": None})  # fmt: skip
        cur = annual.get(year)
        actual = cagr(cur, annual.get(plan.base_year), year - plan.base_year)
        if cur is not None and 0 < frac < 1:
            projected_base = cur / frac
            projection_year_end = cagr(
                projected_base, annual.get(plan.base_year), year - plan.base_year
            )
        else:
            projection_year_end = actual
        projection_deadline = projection_year_end
    else:  # annual_value, share
        for y in years:
            v = annual.get(y)
            rising_values[y] = v
            series.append({"year": y, "value": out_value(v),
                           "target": ind.target_for(y, deadline_year) if show_targets else None})  # fmt: skip
        actual = annual.get(year)
        if (
            actual is not None
            and ind.kind == "annual_value"
            and not reported
            and 0 < frac < 1
            and ind.rule != "pooled_current"
        ):
            projection_year_end = actual / (Decimal(str(frac)) if exact else frac)
        else:
            projection_year_end = actual
        projection_deadline = projection_year_end
        if actual is not None and year < deadline_year:
            prev = annual.get(year - 1)
            if prev is not None and projection_year_end is not None:
                slope = projection_year_end - prev
                projection_deadline = projection_year_end + slope * (deadline_year - year)

    if actual is not None and not exact:
        actual = round(actual, 6)
    target = ind.target_for(year, deadline_year) if show_targets else None
    final = ind.final_target(deadline_year) if show_targets else None
    if target is not None:
        status = status_for(actual, target, projection_year_end, closed)
    elif final is not None and year <= deadline_year:
        status = status_for(actual, final, projection_deadline, as_of >= plan.deadline)
    else:
        status = None
    progress_base = target if target is not None else final
    progress = None
    if actual is not None and progress_base:
        progress = round(float(actual) / progress_base, 4)

    out: dict[str, Any] = {
        "code": ind.code,
        "row": ind.row,
        "name_zh": ind.name_zh,
        "name_en": ind.name_en,
        "levels": list(ind.levels),
        "unit": ind.unit,
        "base_unit": ind.base_unit,
        "kind": ind.kind,
        "source": ind.source,
        "rule": ind.rule,
        "reporter": ind.reporter,
        "year": year,
        "actual": out_value(actual) if ind.kind != "growth_rate" else num(actual),
        "target": target,
        "target_note": ind.target_notes.get(year),
        "final_target": final,
        "progress": progress,
        "status": status,
        "projection_year_end": (
            out_value(projection_year_end)
            if ind.kind != "growth_rate"
            else num(projection_year_end)
        ),
        "projection_deadline": (
            out_value(projection_deadline)
            if ind.kind != "growth_rate"
            else num(projection_deadline)
        ),
        "money": exact,
        "series": series,
        "national": ind.national,
        "section": ind.section,
        "quote": ind.quote,
    }
    if ind.rising:
        closed_years = [y for y in years if as_of >= date(y, 12, 31)]
        out["rising_every_year"] = rising_check(rising_values, closed_years)
    return out


async def plan_progress(
    sessionmaker: async_sessionmaker[AsyncSession],
    plan: Plan,
    year: int,
    *,
    district: str | None = None,
    as_of: date | None = None,
    series_cache: ProgressCache | None = None,
) -> dict[str, Any]:
    scope = scope_of(plan, district)
    as_of = as_of or today()
    end = min(as_of, date(year, 12, 31))
    rule_district = None if scope == "city" else scope
    async with sessionmaker() as session:
        computed = await computed_series(session, plan, year, end, rule_district, series_cache)
        reported = await reported_series(session, plan, scope, year)
    rows = []
    for ind in plan.indicators:
        if ind.source == "computed":
            annual = computed.get(ind.rule or "", {})
        else:
            annual = reported.get(ind.code, {})
        rows.append(indicator_progress(plan, ind, annual, year, end, scope))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"] or "no_target"] = counts.get(r["status"] or "no_target", 0) + 1
    return {
        "plan": plan.summary(),
        "scope": scope,
        "year": year,
        "as_of": end.isoformat(),
        "status_counts": counts,
        "indicators": rows,
    }


def default_year(plan: Plan) -> int:
    return min(today().year, plan.deadline.year)


def previous_day(d: date) -> date:
    return d - timedelta(days=1)
