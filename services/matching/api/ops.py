"""Index status (operators)."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request

from services.matching.domain.text import SEGMENTER

router = APIRouter(prefix="/v1", tags=["ops"])


@router.get("/index", summary="Size, feed position and refits of the patent and need indexes")
async def index_status(request: Request) -> dict[str, Any]:
    consumer = request.app.state.consumer
    replica = request.app.state.replica
    return {
        # Which worker answered (several share the port: `MATCHING_WORKERS`).
        "worker": {"pid": os.getpid(), "role": replica.role if replica else "single"},
        "segmenter": SEGMENTER,
        "patents": request.app.state.indexer.index.stats(),
        "loaded_snapshot_position": request.app.state.indexer.loaded_snapshot_position,
        "needs": request.app.state.needs.index.stats(),
        "feed_position": consumer.position if consumer else None,
        "feed_error": consumer.last_error if consumer else None,
    }
