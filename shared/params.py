"""Request parameter types shared by the services."""

from typing import Annotated

from fastapi import Path, Query

# Database ids are 64-bit; anything larger is a client error, not a driver overflow.
MAX_ID = 2**63 - 1
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
# Years are stored as 32-bit integers; the plans run 2021-2030, the ledger from 1985.
MIN_YEAR, MAX_YEAR = 1900, 2200
YearQuery = Annotated[int | None, Query(ge=MIN_YEAR, le=MAX_YEAR)]
