"""The one error shape, for the failures a route does not raise itself."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from shared.errors import install_error_handlers


class Thing(BaseModel):
    district: str


def app() -> FastAPI:
    a = FastAPI()
    install_error_handlers(a)

    @a.post("/revalidate")
    async def revalidate() -> None:
        Thing.model_validate({})

    @a.get("/boom")
    async def boom() -> None:
        raise RuntimeError("bug")

    return a


# Unique-key races (409) and other integrity errors (500) are tested for real, on both
# engines, in tests/catalog/test_integrity.py.


def test_model_validation_inside_a_handler_is_a_422_with_the_field() -> None:
    r = TestClient(app()).post("/revalidate")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "district"


def test_unexpected_errors_are_500_problems_without_internals() -> None:
    r = TestClient(app(), raise_server_exceptions=False).get("/boom")
    assert r.status_code == 500 and "bug" not in r.text
    assert r.json()["type"].endswith("/internal")
