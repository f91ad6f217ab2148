"""Helpers shared by the inbox, bookmark and badge tests: people, tokens, channels, messages.

Channels, messages and acks go through the messaging routes (``POST /v1/messaging-channels/``,
``POST /v1/messaging-messages/``, ``POST /v1/messaging-messages/{id}/ack/``).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from courier.core.tenancy import unscoped
from courier.models.messaging import MessagingChannel, MessagingSubscriber
from tests.conftest import Org, doc


async def individual(
    client: httpx.AsyncClient, org: Org, account_type: str = "participant", name: str = "Pat"
) -> str:
    response = await client.post(
        "/v1/individuals/",
        json=doc(
            "individuals",
            {"first-name": name, "last-name": "Doe", "account-type": account_type},
        ),
        headers=org.admin,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def token(client: httpx.AsyncClient, org: Org, individual_id: str) -> dict[str, str]:
    response = await client.post(
        "/v1/access-tokens/",
        json=doc("access-tokens", {"individual-id": individual_id}),
        headers=org.staff,
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['data']['attributes']['token']}"}


async def channel(
    client: httpx.AsyncClient, org: Org, individual_ids: list[str], **attributes: Any
) -> str:
    response = await client.post(
        "/v1/messaging-channels/",
        json=doc("messaging-channels", {"individual-ids": individual_ids, **attributes}),
        headers=org.staff,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def group_channel(client: httpx.AsyncClient, org: Org, individual_ids: list[str]) -> str:
    """A channel of a new individual group ("Care team") of ``individual_ids``."""
    team = await client.post(
        "/v1/individual-groups/",
        json=doc("individual-groups", {"name": "Care team", "individual-ids": individual_ids}),
        headers=org.admin,
    )
    assert team.status_code == 201, team.text
    return await channel(
        client, org, individual_ids, **{"individual-group-id": team.json()["data"]["id"]}
    )


async def post(
    client: httpx.AsyncClient, org: Org, channel_id: str, individual_id: str, text: str = "hi"
) -> str:
    response = await client.post(
        "/v1/messaging-messages/",
        json=doc(
            "messaging-messages",
            {"channel-id": channel_id, "individual-id": individual_id, "message": text},
        ),
        headers=org.staff,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def ack(client: httpx.AsyncClient, org: Org, message_id: str, individual_id: str) -> None:
    response = await client.post(
        f"/v1/messaging-messages/{message_id}/ack/",
        json={"individual-id": individual_id},
        headers=org.staff,
    )
    assert response.status_code == 201, response.text


async def channel_row(app: Any, channel_id: str) -> MessagingChannel:
    async with app.state.database.sessionmaker() as session:
        stmt = unscoped(
            select(MessagingChannel).where(MessagingChannel.id == uuid.UUID(channel_id)),
            "test inspects a channel's counters",
        )
        row: MessagingChannel = (await session.execute(stmt)).scalar_one()
        return row


async def subscriber_row(app: Any, channel_id: str, individual_id: str) -> MessagingSubscriber:
    async with app.state.database.sessionmaker() as session:
        stmt = unscoped(
            select(MessagingSubscriber).where(
                MessagingSubscriber.channel_id == uuid.UUID(channel_id),
                MessagingSubscriber.individual_id == uuid.UUID(individual_id),
            ),
            "test inspects a read horizon",
        )
        row: MessagingSubscriber = (await session.execute(stmt)).scalar_one()
        return row


def error_source(response: httpx.Response) -> dict[str, str]:
    source: dict[str, str] = response.json()["errors"][0]["source"]
    return source
