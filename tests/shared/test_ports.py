"""Ports for test and bench servers: never one an outgoing connection can take first."""

from __future__ import annotations

import socket

from shared.testing import bound_socket, first_ephemeral_port, free_port


def test_a_port_for_a_later_server_lies_below_the_ephemeral_range_and_is_free() -> None:
    first_ephemeral = first_ephemeral_port()
    for _ in range(20):
        port = free_port()
        assert 1024 <= port < first_ephemeral
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free: nothing listens there


def test_a_bound_socket_holds_its_port_until_the_server_takes_it() -> None:
    sock = bound_socket()
    try:
        port = sock.getsockname()[1]
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.1", port))
            except OSError:
                pass
            else:
                raise AssertionError(f"port {port} could be bound twice")
    finally:
        sock.close()
