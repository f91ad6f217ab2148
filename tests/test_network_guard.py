"""The suite cannot reach the internet by accident: pytest-socket allows loopback only."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime

import pytest
from pytest_socket import SocketConnectBlockedError

from courier.events.webhooks import attempt_delivery
from courier.models.event import Event

PUBLIC = "93.184.215.14"  # never reached: the guard refuses the connection before it is made


def test_a_connection_to_a_public_address_fails_the_test() -> None:
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection((PUBLIC, 443), timeout=1)


async def test_a_webhook_delivery_to_a_public_address_is_stopped_at_the_socket() -> None:
    """The delivery transport meets the guard at the socket boundary: no byte leaves."""
    event = Event(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        seq=1,
        type="api-keys.created",
        resource_type="api-keys",
        resource_id=uuid.uuid4(),
        data={},
        individual_ids=[],
        occurred_at=datetime.now(UTC),
    )
    with pytest.raises(BaseException) as raised:
        await attempt_delivery(
            f"https://{PUBLIC}/hooks", "whsec_c2VjcmV0", event, 1, allow_private=False
        )
    assert blocked(raised.value)


def blocked(exc: BaseException) -> bool:
    if isinstance(exc, SocketConnectBlockedError):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(blocked(inner) for inner in exc.exceptions)
    return False


def test_loopback_stays_open() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
    finally:
        server.close()
