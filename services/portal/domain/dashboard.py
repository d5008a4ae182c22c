"""The bureau dashboard's view-model: headline figures and chart series from the
indicators API's progress and breakdown answers (no figure is computed here, only
re-shaped, so the page shows exactly what the API says)."""

from __future__ import annotations

from typing import Any

from services.portal.i18n import gettext

HEADLINES = ("C03", "C04")  # 3000 pooled, 1000 converted to SMEs


def by_code(progress: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["code"]: row for row in progress.get("indicators", [])}


def cumulative_series(row: dict[str, Any]) -> dict[str, Any]:
    series = row.get("series") or []
    return {
        "years": [s["year"] for s in series],
        "cumulative": [s.get("cumulative", s.get("value")) for s in series],
        "target": row.get("final_target"),
    }


def yearly_series(row: dict[str, Any]) -> dict[str, Any]:
    """Each year's new value with its change on the year before."""
    series = row.get("series") or []
    years = [s["year"] for s in series]
    values = [s.get("value") or 0 for s in series]
    changes: list[float | None] = []
    for i, v in enumerate(values):
        prev = values[i - 1] if i else None
        changes.append(None if not prev else round((v - prev) / prev * 100, 1))
    return {"years": years, "values": values, "changes": changes}


def breakdown_series(
    body: dict[str, Any] | list[dict[str, Any]] | None,
    key: str,
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    rows = body if isinstance(body, list) else (body or {}).get("rows", [])
    labels = []
    for r in rows:
        raw = r.get(key)
        label = r.get(f"{key}_name") or r.get("name") or (names or {}).get(str(raw), raw)
        labels.append(str(label) if label not in (None, "") else gettext("Unclassified"))
    return {
        "keys": [r.get(key) for r in rows],
        "labels": labels,
        "values": [r.get("patent_deals", r.get("ever_pooled", r.get("count", 0))) for r in rows],
    }
