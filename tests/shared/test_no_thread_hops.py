"""Every route and dependency of every service is a coroutine.

FastAPI runs a plain `def` endpoint or dependency in a worker thread. For the one-line
dependencies of these services (settings, filters, the signed-in user) that hop costs more
than the work: under the mixed load (bench/load_mix.py) a sample of the catalog's
interpreter lock showed 5 % of its time in thread hand-offs, nearly all from the keyword
search's `filters` dependency, and each hop waits for the lock behind the event loop.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from services.catalog.main import create_app as catalog_app
from services.indicators.main import create_app as indicators_app
from services.matching.main import create_app as matching_app
from services.portal.main import create_app as portal_app


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """The app's routes, including those of routers included (lazily, in this FastAPI)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)


def runs_on_the_loop(call: Callable[..., Any]) -> bool:
    return (
        inspect.iscoroutinefunction(call)
        or inspect.isasyncgenfunction(call)
        or inspect.iscoroutinefunction(getattr(call, "__call__", None))  # noqa: B004
    )


def thread_hops(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        if sub.call is not None and not runs_on_the_loop(sub.call):
            yield getattr(sub.call, "__qualname__", repr(sub.call))
        yield from thread_hops(sub)


@pytest.mark.parametrize(
    "create_app", [catalog_app, matching_app, indicators_app, portal_app],
    ids=["catalog", "matching", "indicators", "portal"],
)  # fmt: skip
def test_no_route_or_dependency_runs_in_a_worker_thread(create_app: Callable[[], FastAPI]) -> None:
    routes = list(api_routes(create_app().routes))
    assert len(routes) > 10  # the walk reached the included routers
    found = set()
    for route in routes:
        if not runs_on_the_loop(route.endpoint):
            found.add(f"{route.path}: endpoint {route.endpoint.__qualname__}")
        found |= {f"{route.path}: {name}" for name in thread_hops(route.dependant)}
    assert not found, sorted(found)
