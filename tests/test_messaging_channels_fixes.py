"""Channels as the seed prints them: org-id and organization-id, RFC 6902 JSON-Patch."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Org, doc
from tests.test_messaging import (
    CHANNELS,
    channel_view,
    error,
    events_of,
    make_channel,
    make_individual,
    patch_channel,
)


async def test_channels_take_org_id_and_organization_id(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    alice = await make_individual(client, org, "Alice", "A")
    for name in ("org-id", "organization-id"):
        made = await make_channel(client, org, {"individual-ids": [alice], name: org.id})
        assert made["attributes"]["org-id"] == org.id  # the seed's response name
    both = await make_channel(
        client, org, {"individual-ids": [alice], "org-id": org.id, "organization-id": org.id}
    )
    assert both["attributes"]["org-id"] == org.id
    for name in ("org-id", "organization-id"):
        foreign = await client.post(
            CHANNELS,
            json=doc("messaging-channels", {"individual-ids": [alice], name: other_org.id}),
            headers=org.staff,
        )
        assert foreign.status_code == 404, foreign.text
    listed = await client.get(CHANNELS, headers=org.staff, params={"organization-id": org.id})
    assert listed.status_code == 200


async def test_channel_patch_move_copy_and_test(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    alice = await make_individual(client, org, "Alice", "A")
    channel = await make_channel(client, org, {"individual-ids": [alice], "name": "Knees"})
    ident = channel["id"]

    # test guards the rest; copy and move take from.
    response = await patch_channel(
        client,
        org.staff,
        ident,
        [
            {"op": "test", "path": "/name", "value": "Knees"},
            {"op": "copy", "from": "/name", "path": "/label"},
            {"op": "move", "from": "/label", "path": "/name"},
            {"op": "test", "path": "/event-settings/enabled", "value": True},
            {"op": "replace", "path": "/event-settings/enabled", "value": False},
        ],
    )
    assert response.status_code == 200, response.text
    attrs = response.json()["data"]["attributes"]
    assert attrs["label"] is None and attrs["event-settings"] == {"enabled": False}
    view = await channel_view(client, org.staff, ident, **{"use-group-name": "false"})
    assert view["name"] == "Knees"
    updated = [e for e in await events_of(app, ident) if e.type == "messaging-channels.updated"]
    assert len(updated) == 1

    # A failed test: 409 at that operation, and nothing before it is applied either.
    failed = await patch_channel(
        client,
        org.staff,
        ident,
        [
            {"op": "replace", "path": "/label", "value": "applied?"},
            {"op": "test", "path": "/name", "value": "Elbows"},
        ],
    )
    assert error(failed, 409)["source"]["pointer"] == "/data/attributes/1"
    assert error(failed, 409)["code"] == "patch-test-failed"
    assert (await channel_view(client, org.staff, ident))["label"] is None

    # Moving a non-nullable attribute away, or copying a value where it does not fit: 400.
    response = await patch_channel(
        client, org.staff, ident, [{"op": "move", "from": "/floating", "path": "/label"}]
    )
    assert error(response, 400)["source"]["pointer"] == "/data/attributes/0/from"
    response = await patch_channel(
        client,
        org.staff,
        ident,
        [{"op": "copy", "from": "/name", "path": "/floating"}],
    )
    assert error(response, 400)["source"]["pointer"] == "/data/attributes/0"
    response = await patch_channel(
        client, org.staff, ident, [{"op": "copy", "from": "/archived", "path": "/label"}]
    )
    assert error(response, 400)["source"]["pointer"] == "/data/attributes/0/from"
    # Removing what is already gone does not fit the document: 409.
    response = await patch_channel(
        client,
        org.staff,
        ident,
        [{"op": "remove", "path": "/label"}, {"op": "remove", "path": "/label"}],
    )
    assert error(response, 409)["source"]["pointer"] == "/data/attributes/1"
