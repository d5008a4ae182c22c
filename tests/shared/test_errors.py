"""The one error shape, for the failures a route does not raise itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import text

from shared.db import Database
from shared.errors import install_error_handlers
from shared.testing import fresh_database
from tests.conftest import require_engine
from tests.shared.apps import app_over


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


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"], ids=["deadlock", "serialization"])
def test_a_transaction_the_server_broke_off_is_a_409_to_retry(
    sqlstate: str, tmp_path: Path
) -> None:
    """PostgreSQL fails one transaction of a deadlock (40P01) or a lost serializable race
    (40001); the request rolled back whole, and a retry succeeds: a 409, not a 500."""
    require_engine("postgresql")
    with fresh_database("postgresql", tmp_path, "retry") as url:
        db = Database(url)

        a = app_over(db)

        @a.post("/conflict")
        async def conflict() -> None:
            async with db.sessionmaker() as session:
                await session.execute(
                    text(
                        f"DO $$ BEGIN RAISE EXCEPTION 'broken off' USING ERRCODE = '{sqlstate}';"
                        " END $$"
                    )  # fmt: skip
                )

        with TestClient(a, raise_server_exceptions=False) as client:
            r = client.post("/conflict")
        assert r.status_code == 409, r.text
        assert r.json()["type"].endswith("/conflict") and "重试" in r.json()["detail"]
