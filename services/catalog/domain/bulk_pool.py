"""Validation of upload-job chunks in a worker process, beside the service's own.

A job validates chunk n+1 while it writes chunk n. In a thread the two share one
interpreter lock, so validation (pydantic, number checks, industry tagging, search text:
~70 µs a record) and the writing's own Python (~65 µs) add up; in a process they
overlap, at the price of pickling (~35 µs a record, both sides) and the worker's start-up
— a gain only where a core is free (settings.upload_workers, off by default). The
worker is started at the first job and kept (its start-up — imports, the
industry rule tables, jieba — takes a few seconds); until it is ready, and whenever it is
broken, chunks are validated in a thread as before. `validate_records` is pure: the same
records give the same report in either place.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from typing import Any

from services.catalog.domain.bulk import validate_records
from services.catalog.domain.ingest import ROW_COLUMNS, Outcome, Prepared
from services.catalog.models import PATENT_DATES

log = logging.getLogger("tjp.catalog.bulk")

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_ready: Future[int] | None = None


def _start(parent: int) -> None:
    """In the worker, first: leave when the service does (however it ended: a killed
    service cannot shut its pool down), then build what validation reads once (rule
    tables, jieba's dictionary) and keep it out of the cyclic collector's passes."""
    from services.catalog.domain.industry import _rules_by_subclass
    from shared.textfold import prepare as prepare_nfkc

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    _rules_by_subclass()
    prepare_nfkc()
    gc.collect()
    gc.freeze()


def validate_chunk(
    records: list[tuple[int, dict[str, Any]]],
) -> tuple[list[tuple[int, Prepared]], list[Outcome]]:
    """`validate_records`, and the good records' COPY rows and feed payload parts made
    here too (`Prepared.encode`), with the cyclic collector paused: a chunk allocates
    ~100k containers and frees them by reference counting; collections only cost."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        good, bad = validate_records(records)
        for _, prepared in good:
            prepared.encode()
        return good, bad
    finally:
        if enabled:
            gc.enable()


# Unpickling a date costs ~10 µs (three a record, twice: in `values` and the COPY row),
# an int next to nothing: dates cross between the processes as day ordinals.
_DATE_AT = tuple(ROW_COLUMNS.index(k) for k in PATENT_DATES)
Packed = tuple[
    list[tuple[int, dict[str, Any], Any, tuple[Any, ...], tuple[str, str] | None]], list[Outcome]
]


def _ordinal(d: date | None) -> int | None:
    return None if d is None else d.toordinal()


def _day(n: int | None) -> date | None:
    return None if n is None else date.fromordinal(n)


def validate_packed(records: list[tuple[int, dict[str, Any]]]) -> Packed:
    """`validate_chunk`, its result made cheap to unpickle (see `unpack`)."""
    good, bad = validate_chunk(records)
    packed = []
    for row, p in good:
        assert p.row is not None
        values = {**p.values, **{k: _ordinal(p.values[k]) for k in PATENT_DATES}}
        cells = list(p.row)
        for i in _DATE_AT:
            cells[i] = _ordinal(cells[i])
        packed.append((row, values, p.offer, tuple(cells), p.payload_parts))
    return packed, bad


def unpack(packed: Packed) -> tuple[list[tuple[int, Prepared]], list[Outcome]]:
    good: list[tuple[int, Prepared]] = []
    for row, values, offer, cells, parts in packed[0]:
        days = {k: _day(values[k]) for k in PATENT_DATES}
        values.update(days)
        copy_row = list(cells)
        for i, k in zip(_DATE_AT, PATENT_DATES, strict=True):
            copy_row[i] = days[k]
        good.append((row, Prepared(values, offer, tuple(copy_row), parts)))
    return good, packed[1]


def _worker_pool() -> tuple[ProcessPoolExecutor, Future[int]]:
    global _pool, _ready
    with _lock:
        if _pool is None or _ready is None:
            # spawn, not fork: the service has threads (the event loop's helpers) whose
            # locks a forked child could inherit held.
            _pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=(os.getpid(),),
            )
            _ready = _pool.submit(os.getpid)  # done once the worker has started
        return _pool, _ready


def shutdown() -> None:
    """Stop the worker (the service is stopping); a later job starts a new one."""
    global _pool, _ready
    with _lock:
        pool, _pool, _ready = _pool, None, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool, _ready
    with _lock:
        if _pool is pool:
            _pool, _ready = None, None
    pool.shutdown(wait=False, cancel_futures=True)


def offload(workers: int) -> Callable[..., Awaitable[Any]]:
    """A `to_thread` for `run_job`: `validate_records` goes to the worker process once it
    is ready (with `workers` 0, never); anything else, and any chunk while the worker is
    starting or after it broke, runs in a thread."""

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        if fn is not validate_records or workers <= 0:
            return await asyncio.to_thread(fn, *args)
        pool, ready = _worker_pool()
        if ready.done() and ready.exception() is None:
            try:
                packed = await asyncio.get_running_loop().run_in_executor(
                    pool, validate_packed, *args
                )
                return unpack(packed)
            except BrokenProcessPool:
                log.warning("upload validation worker died; validating in a thread")
                _discard(pool)
        elif ready.done():
            log.warning("upload validation worker failed to start: %r", ready.exception())
            _discard(pool)
        return await asyncio.to_thread(fn, *args)

    return run
