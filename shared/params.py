"""Request parameter types shared by the services."""

from typing import Annotated

from fastapi import Path

# Database ids are 64-bit; anything larger is a client error, not a driver overflow.
MAX_ID = 2**63 - 1
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
