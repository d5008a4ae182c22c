"""Matching's worker processes, each listening on its own SO_REUSEPORT socket.

With one shared listening socket (uvicorn's `workers=`) the first worker to wake accepts a
whole burst of connections, and a few long-lived keep-alive clients all landed on one
worker: two workers served 0.89x of one (bench/matching/http_bench.py). With a socket per
worker the kernel spreads new connections over them. (A module of its own: spawned
workers import their target by name, which `python -m`'s __main__ cannot give them.)
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.process import BaseProcess

import uvicorn

RESTART_PAUSE_S = 1.0
YOUNG_S = 60.0  # a worker that dies sooner than this after starting did not start
MAX_QUICK_FAILURES = 3


def reuseport_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve_worker(host: str, port: int, log_level: str) -> None:
    sock = reuseport_socket(host, port)
    config = uvicorn.Config("services.matching.main:create_app", factory=True, log_level=log_level)
    uvicorn.Server(config).run(sockets=[sock])


def supervise(host: str, port: int, workers: int, log_level: str) -> None:
    """Start the workers, restart one that dies, stop them all on SIGINT/SIGTERM."""
    ctx = multiprocessing.get_context("spawn")
    stopping = failed = False

    def start() -> BaseProcess:
        p = ctx.Process(target=serve_worker, args=(host, port, log_level), daemon=False)
        p.start()
        return p

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    procs = [start() for _ in range(workers)]
    started = [time.monotonic()] * workers
    quick_failures = 0
    while not stopping:
        time.sleep(0.2)
        for i, p in enumerate(procs):
            if p.is_alive():
                continue
            time.sleep(RESTART_PAUSE_S)  # a Ctrl-C reaches the workers first: let it land
            if stopping:
                break
            # A worker that dies right after starting (port taken, bad settings) would die
            # again: give up and say so instead of restarting it for ever.
            died_young = time.monotonic() - started[i] < YOUNG_S
            quick_failures = quick_failures + 1 if died_young else 0
            if quick_failures > MAX_QUICK_FAILURES:
                stopping = True
                failed = True
                break
            procs[i], started[i] = start(), time.monotonic()
    for p in procs:
        if p.pid is not None and p.is_alive():
            os.kill(p.pid, signal.SIGTERM)
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    if failed:
        raise SystemExit(
            f"matching: workers died within {YOUNG_S:.0f} s of starting "
            f"{MAX_QUICK_FAILURES + 1} times in a row (is port {port} taken?); stopped"
        )
