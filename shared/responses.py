"""A JSON response written by orjson, for large bodies built as plain dicts.

FastAPI writes a route's returned dict through `jsonable_encoder` and `json.dumps`, which
costs milliseconds on a ranking or a plan's progress; orjson writes the same document at
about a hundredth of that (tests/indicators/test_progress_cache.py compares the two).
Decimals follow FastAPI's own rule (`decimal_encoder`), and integer keys become strings as
`json.dumps` makes them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from fastapi.encoders import decimal_encoder
from fastapi.responses import Response


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_encoder(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class FastJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default, option=orjson.OPT_NON_STR_KEYS)
