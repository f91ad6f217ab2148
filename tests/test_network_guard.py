"""The suite cannot reach the internet by accident: pytest-socket allows loopback only."""

from __future__ import annotations

import socket

import pytest
from pytest_socket import SocketConnectBlockedError

# Never reached: the guard refuses the connection in Python, before any packet is made. Courier
# itself is never pointed at a public address by the suite (not even to show the guard stops
# a webhook delivery), since then it would really try to deliver there.
PUBLIC = "93.184.215.14"


def test_a_connection_to_a_public_address_fails_the_test() -> None:
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection((PUBLIC, 443), timeout=1)


def test_loopback_stays_open() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
    finally:
        server.close()
