"""Engine, session and migration helpers shared by every service.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) is production.
Each service owns its database and its own Alembic history.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from sqlalchemy import JSON, MetaData, event, insert, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql import sqltypes

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata() -> MetaData:
    """A fresh MetaData with our constraint naming convention, for a service's `Base`:

        class Base(DeclarativeBase):
            metadata = service_metadata()

    (a class statement rather than `Base = make_base()`, so type checkers see a class)."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def make_base() -> type[DeclarativeBase]:
    """A fresh declarative base with our constraint naming convention."""

    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION)

    return Base


def async_url(url: str) -> str:
    """Accept plain `postgresql://` / `sqlite:///` URLs and pick the async driver."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+asyncpg")
    elif u.drivername == "sqlite":
        u = u.set(drivername="sqlite+aiosqlite")
    return u.render_as_string(hide_password=False)


def is_sqlite(url_or_engine: str | AsyncEngine) -> bool:
    name = (
        url_or_engine.dialect.name
        if isinstance(url_or_engine, AsyncEngine)
        else make_url(url_or_engine).get_backend_name()
    )
    return name == "sqlite"


def create_engine(url: str, *, immediate: bool = True, **kwargs: Any) -> AsyncEngine:
    """An async engine. On SQLite, `immediate` makes every transaction take the write lock
    at BEGIN (no deadlock when a reader later writes); read-only engines use a deferred
    BEGIN so readers run side by side under WAL."""
    url = async_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        # Writers take the lock at BEGIN so two requests never deadlock on upgrade.
        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        _disable_pysqlite_autobegin(engine)
        _utc_datetimes(engine)
        return engine
    if "poolclass" in kwargs:
        return create_async_engine(url, **kwargs)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    engine = create_async_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_idle_connections(engine)
    return engine


# A pooled connection back from use within this many seconds is taken as alive without
# asking the server (a socket the server closed is still noticed: `is_closed()`).
PING_IDLE_AFTER = 1.0


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Check a pooled connection before handing it out, as `pool_pre_ping` does, but only
    one that sat idle, and in one round trip. On asyncpg `pool_pre_ping` costs three
    (BEGIN, ping, ROLLBACK, for pgbouncer's transaction mode) on every checkout: under
    load, as many round trips as a keyword search's own. A connection the server dropped
    is replaced (`DisconnectionError`: the pool discards it and takes another)."""

    @event.listens_for(engine.sync_engine, "connect")
    @event.listens_for(engine.sync_engine, "checkin")
    def _used(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["used_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _check(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if dbapi_conn.driver_connection.is_closed():
            raise DisconnectionError("the server closed this pooled connection")
        if time.monotonic() - record.info.get("used_at", 0.0) < PING_IDLE_AFTER:
            return
        try:
            dbapi_conn.run_async(lambda conn: conn.fetchrow(";"))
        except Exception as exc:
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc


class _UtcSQLiteDateTime(sqlite.DATETIME):
    """SQLite keeps no time zone: store `timezone=True` columns in UTC and read them back
    as aware UTC datetimes, as PostgreSQL's timestamptz does (the API promises RFC 3339
    date-times with an offset)."""

    def bind_processor(self, dialect: Any) -> Any:
        parent = super().bind_processor(dialect)

        def process(value: Any) -> Any:
            if isinstance(value, datetime) and value.tzinfo is not None:
                value = value.astimezone(UTC)
            return parent(value) if parent else value

        return process

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        parent = super().result_processor(dialect, coltype)
        aware = bool(self.timezone)

        def process(value: Any) -> Any:
            value = parent(value) if parent else value
            if aware and isinstance(value, datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value

        return process


def _utc_datetimes(engine: AsyncEngine) -> None:
    dialect = engine.sync_engine.dialect
    dialect.colspecs = {**dialect.colspecs, sqltypes.DateTime: _UtcSQLiteDateTime}


def _disable_pysqlite_autobegin(engine: AsyncEngine) -> None:
    # SQLAlchemy's documented recipe: let our "begin" listener emit BEGIN itself.
    @event.listens_for(engine.sync_engine, "connect")
    def _no_autobegin(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None


def _refuse_writes(engine: AsyncEngine) -> None:
    """An autocommit session would commit each write statement on its own: a read-only
    request that wrote twice and then failed would keep half its writes. Refuse them."""

    @event.listens_for(engine.sync_engine, "before_execute")
    def _no_dml(_conn: Any, clause: Any, *_args: Any) -> None:
        if getattr(clause, "is_dml", False):
            raise RuntimeError("a write through a read-only (autocommit) session")


class Database:
    """Owns the engine and session factory of one service."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = async_url(url)
        self.engine = create_engine(self.url, **engine_kwargs)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: a second engine whose transactions do not take the write lock up front.
        # PostgreSQL: the same pool in autocommit, for requests that only read. Under READ
        # COMMITTED each statement takes its own snapshot inside a transaction too, so the
        # transaction bought nothing but two round trips (BEGIN, ROLLBACK) per request.
        if is_sqlite(self.url):
            self.read_engine = create_engine(self.url, immediate=False, **engine_kwargs)
        else:
            self.read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            _refuse_writes(self.read_engine)
        self.read_sessionmaker = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.engine)

    async def session(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """FastAPI dependency: the request owns the transaction."""
        maker = self.read_sessionmaker if read_only else self.sessionmaker
        async with maker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.is_sqlite:  # on PostgreSQL the read engine shares the pool just disposed
            await self.read_engine.dispose()


def alembic_config(script_location: Path, url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return cfg


def upgrade(script_location: Path, url: str, revision: str = "head") -> None:
    """Run Alembic migrations synchronously (Alembic is the only way tables are made)."""
    from alembic import command

    command.upgrade(alembic_config(script_location, url), revision)


async def upgrade_async(script_location: Path, url: str) -> None:
    await asyncio.to_thread(upgrade, script_location, url)


def run_async_migrations(target_metadata: MetaData) -> None:
    """Body of every service's migrations/env.py."""
    from alembic import context
    from sqlalchemy import pool

    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"

    def do_run(connection: Any) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(async_url(url), poolclass=pool.NullPool)
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run())
        return
    raise RuntimeError("call shared.db.upgrade() from a thread, not inside an event loop")


async def insert_with_ids(
    session: AsyncSession, table: Any, rows: list[dict[str, Any]], key: str
) -> dict[Any, int]:
    """Insert rows and return {row[key]: new id}: on PostgreSQL ids are reserved first and
    the rows COPYed; elsewhere an INSERT ... RETURNING per 2,000 rows."""
    ids: dict[Any, int] = {}
    reserved = await next_ids(session, table, len(rows))
    if reserved is not None:
        for row, new_id in zip(rows, reserved, strict=True):
            row["id"] = new_id
            ids[row[key]] = new_id
        await insert_rows(session, table, rows)
        return ids
    for i in range(0, len(rows), 2000):
        inserted = await session.execute(
            insert(table).returning(table.c.id, table.c[key]), rows[i : i + 2000]
        )
        ids.update({k: new_id for new_id, k in inserted.all()})
    return ids


def dialect_insert(session: AsyncSession) -> Any:
    """The `insert` with `on_conflict_do_*` for the session's engine (PostgreSQL or SQLite)."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def upsert_rows(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows, or update every column they name on the row with the same `id`
    (`ON CONFLICT (id) DO UPDATE`), in the session's transaction: one statement, run as an
    executemany, whatever the number of rows. Rows must name the same columns."""
    if not rows:
        return
    stmt = dialect_insert(session)(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.id], set_={c: stmt.excluded[c] for c in rows[0] if c != "id"}
    )
    await session.execute(stmt, rows)


async def insert_rows(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows in the session's transaction; COPY on PostgreSQL.

    COPY through asyncpg is several times faster than a multi-row INSERT for bulk
    uploads; SQLite gets an ordinary executemany. Rows must name the same columns.
    """
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        await session.execute(table.insert(), rows)
        return
    columns = list(rows[0])
    json_cols = {c.name for c in table.columns if isinstance(c.type, JSON)}
    records = _copy_records(rows, columns, [i for i, c in enumerate(columns) if c in json_cols])
    await copy_records(session, table, columns, records)


async def copy_records(
    session: AsyncSession, table: Any, columns: Sequence[str], records: list[tuple[Any, ...]]
) -> None:
    """COPY ready records (JSON columns as text) in the session's transaction; PostgreSQL
    only. For callers that build the records themselves, without a dict per row."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None

    try:
        await driver.copy_records_to_table(table.name, records=records, columns=list(columns))
    except asyncpg.IntegrityConstraintViolationError as exc:
        # COPY goes round SQLAlchemy, so its errors arrive unwrapped; wrap them so a
        # unique-key race (409, retry) is told apart from other integrity errors (a bug, 500)
        # like any other insert; the request's transaction rolls back.
        raise IntegrityError(f"COPY {table.name}", None, exc) from exc
    except Exception as exc:
        if not driver.is_closed():
            raise
        # The backend ended under the COPY (SQLAlchemy's own test for asyncpg): drop the
        # connection and say so as SQLAlchemy would, so the API answers 503 "retry".
        await conn.invalidate(exc)
        raise DBAPIError(f"COPY {table.name}", None, exc, connection_invalidated=True) from exc


def _copy_records(
    rows: list[dict[str, Any]], columns: list[str], json_at: list[int]
) -> list[tuple[Any, ...]]:
    """The rows as COPY records, JSON columns as text: one C-level itemgetter per row
    rather than a generator over its columns (bulk uploads COPY 100k-row tables)."""
    get = itemgetter(*columns)
    values: list[Any] = [get(r) for r in rows]
    if len(columns) == 1:
        values = [(v,) for v in values]
    if not json_at:
        return values
    records = []
    dumps = orjson.dumps
    for v in values:
        row = list(v)
        for i in json_at:
            row[i] = dumps(row[i]).decode()
        records.append(tuple(row))
    return records


async def next_ids(session: AsyncSession, table: Any, n: int) -> list[int] | None:
    """Reserve n ids from the table's sequence (PostgreSQL), so rows can be COPYed with ids."""
    if session.get_bind().dialect.name != "postgresql" or n == 0:
        return None
    res = await session.execute(
        text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
        {"t": table.name, "n": n},
    )
    return [r[0] for r in res.all()]
