"""Re-tag stored patents after the industry rules change.

Tags are computed when a patent is written (ingest.prepare) and stored, so the search
filter and the statistics are plain column reads. When the concordance, the keyword
terms or the supplement change, `tjp-catalog retag-industries` brings every stored
patent in line: only patents whose tags change are written, get a new version and a
feed entry (so the matching service's copy follows); running it twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.domain.industry import industry_columns
from services.catalog.domain.ingest import publish_patents
from services.catalog.models import Patent
from shared.feed import utcnow


@dataclass
class RetagResult:
    checked: int = 0
    changed: int = 0


async def retag_patents(session: AsyncSession, batch: int = 2000) -> RetagResult:
    """Recompute every patent's industry tags in the caller's transaction."""
    result = RetagResult()
    last_id = 0
    while True:
        patents = (
            await session.scalars(
                select(Patent).where(Patent.id > last_id).order_by(Patent.id).limit(batch)
            )
        ).all()
        if not patents:
            break
        changed = []
        for p in patents:
            cols = industry_columns(p.ipc_codes, p.title, p.abstract, p.claims)
            result.checked += 1
            if cols["industries"] != p.industries:
                p.industries = cols["industries"]
                p.industry_text = cols["industry_text"]
                p.version += 1
                p.updated_at = utcnow()
                changed.append(p.id)
        await session.flush()
        await publish_patents(session, changed)
        result.changed += len(changed)
        last_id = patents[-1].id
    return result
