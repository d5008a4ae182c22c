"""Test and local-run helpers: fresh databases and real uvicorn servers on loopback."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from shared.feed import close_long_polls

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)


def postgres_reachable(url: str | None = None) -> bool:
    u = make_url(url or postgres_url())
    try:
        with socket.create_connection((u.host or "127.0.0.1", u.port or 5432), timeout=1):
            return True
    except OSError:
        return False


async def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(
        host=u.host,
        port=u.port or 5432,
        user=u.username,
        password=u.password,
        database=u.database,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def fresh_database(engine: str, tmp_dir: Path, name: str = "t") -> Iterator[str]:
    """A new empty database on SQLite (temp file) or PostgreSQL (CREATE DATABASE)."""
    if engine == "sqlite":
        path = tmp_dir / f"{name}-{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite+aiosqlite:///{path}"
        return
    base = postgres_url()
    dbname = f"tjp_{name}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(base, f'CREATE DATABASE "{dbname}"'))
    try:
        yield make_url(base).set(database=dbname).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))


class LiveServer:
    """Runs an ASGI app under uvicorn in a background thread on a loopback port.

    The server is handed a socket already bound (`sock`, or one bound here), never a port
    number to bind later: a port found free and released can be taken in between, even as
    the source port of an outgoing connection (CI once lost a platform test that way)."""

    def __init__(self, app: FastAPI, port: int = 0, sock: socket.socket | None = None) -> None:
        self.sock = sock or bound_socket(port)
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.app = app
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("server thread died during startup")
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        close_long_polls(self.app)  # uvicorn waits for in-flight requests before it stops
        self.server.should_exit = True
        self.thread.join(timeout=15)


def bound_socket(port: int = 0) -> socket.socket:
    """A loopback socket bound to `port` (0: any free one), to give a `LiveServer`; its
    port is reserved from the moment it is bound."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def free_port() -> int:
    """A free loopback port for a server that binds it later (a subprocess). Picked below
    the kernel's ephemeral range: a port bound to 0 comes from that range, where any
    outgoing connection (to PostgreSQL, between services) may take it as its source port
    before the server binds it."""
    first_ephemeral = first_ephemeral_port()
    low = max(1024, first_ephemeral - 12_000)
    for _ in range(200):
        port = random.randrange(low, first_ephemeral)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # in use (a listener, or a connection in TIME_WAIT)
                continue
            return port
    with socket.socket() as s:  # the range below is crowded: take the kernel's pick
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def first_ephemeral_port() -> int:
    """Where the kernel starts picking source ports for outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default
