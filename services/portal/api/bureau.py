from __future__ import annotations

from fastapi import APIRouter, Depends

from services.portal.api.session import csrf_protect

router = APIRouter(dependencies=[Depends(csrf_protect)])
