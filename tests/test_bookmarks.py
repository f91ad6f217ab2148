"""Bookmarks: an individual marks messages of its channels, or an API key naming nobody marks
them for the organization; one per channel and owner unless it asks for several."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import Org, doc
from tests.test_inbox_support import channel, error_source, individual, post, token

URL = "/v1/messaging-bookmarks/"


@dataclass
class Room:
    patient: str
    provider: str
    outsider: str
    channel: str
    other_channel: str
    messages: list[str]
    other_message: str
    patient_token: dict[str, str]
    outsider_token: dict[str, str]


async def room(client: httpx.AsyncClient, org: Org) -> Room:
    patient = await individual(client, org)
    provider = await individual(client, org, "provider")
    outsider = await individual(client, org)
    main = await channel(client, org, [patient, provider])
    other = await channel(client, org, [patient, provider, outsider])
    messages = [await post(client, org, main, provider, f"note {i}") for i in range(3)]
    other_message = await post(client, org, other, provider, "elsewhere")
    return Room(
        patient,
        provider,
        outsider,
        main,
        other,
        messages,
        other_message,
        await token(client, org, patient),
        await token(client, org, outsider),
    )


async def bookmark(
    client: httpx.AsyncClient, headers: dict[str, str], **attributes: Any
) -> httpx.Response:
    return await client.post(URL, json=doc("messaging-bookmarks", attributes), headers=headers)


def mark(channel_id: str, message_id: str, **extra: Any) -> dict[str, Any]:
    return {"channel-id": channel_id, "message-id": message_id, **extra}


async def ids(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> list[str]:
    response = await client.get(URL, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


async def test_bookmark_shape_and_replacement(client: httpx.AsyncClient, org: Org) -> None:
    r = await room(client, org)
    first = await bookmark(client, r.patient_token, **mark(r.channel, r.messages[0]))
    assert first.status_code == 201, first.text
    data = first.json()["data"]
    assert data["type"] == "messaging-bookmarks"
    attributes = data["attributes"]
    assert attributes == {
        "channel": {"id": r.channel},
        "message": {"id": r.messages[0]},
        "created-by": {"id": r.patient, "type": "individuals"},
        "created-at": attributes["created-at"],
        "organization-id": org.id,
    }
    assert attributes["created-at"].endswith("Z")

    # Without allow-multi-message the new bookmark replaces the old one in that channel...
    second = await bookmark(client, r.patient_token, **mark(r.channel, r.messages[1]))
    assert second.status_code == 201
    second_id = second.json()["data"]["id"]
    assert await ids(client, r.patient_token) == [second_id]
    gone = await client.get(f"{URL}{data['id']}/", headers=r.patient_token)
    assert gone.status_code == 404

    # ...but not bookmarks in other channels.
    elsewhere = await bookmark(client, r.patient_token, **mark(r.other_channel, r.other_message))
    assert elsewhere.status_code == 201
    third = await bookmark(
        client,
        r.patient_token,
        **mark(r.channel, r.messages[2], **{"allow-multi-message": True}),
    )
    assert third.status_code == 201
    assert sorted(await ids(client, r.patient_token)) == sorted(
        [second_id, elsewhere.json()["data"]["id"], third.json()["data"]["id"]]
    )
    in_channel = await ids(client, r.patient_token, **{"filter[channel-id]": r.channel})
    assert sorted(in_channel) == sorted([second_id, third.json()["data"]["id"]])


async def test_bookmarking_a_bookmarked_message_keeps_one(
    client: httpx.AsyncClient, org: Org
) -> None:
    r = await room(client, org)
    multi = {"allow-multi-message": True}
    a = await bookmark(client, r.patient_token, **mark(r.channel, r.messages[0], **multi))
    b = await bookmark(client, r.patient_token, **mark(r.channel, r.messages[1], **multi))
    again = await bookmark(client, r.patient_token, **mark(r.channel, r.messages[0], **multi))
    assert again.status_code == 201
    assert again.json()["data"]["id"] == a.json()["data"]["id"]
    assert len(await ids(client, r.patient_token)) == 2
    # Re-marking it without allow-multi-message keeps it and drops the others.
    single = await bookmark(client, r.patient_token, **mark(r.channel, r.messages[0]))
    assert single.json()["data"]["id"] == a.json()["data"]["id"]
    assert await ids(client, r.patient_token) == [a.json()["data"]["id"]]
    assert (
        await client.get(f"{URL}{b.json()['data']['id']}/", headers=org.staff)
    ).status_code == 404


async def test_the_message_must_be_a_posted_message_of_the_channel(
    client: httpx.AsyncClient, org: Org
) -> None:
    r = await room(client, org)
    draft = await client.post(
        "/v1/messaging-messages/",
        json=doc(
            "messaging-messages",
            {"channel-id": r.channel, "individual-id": r.patient, "message": "wip", "draft": True},
        ),
        headers=org.staff,
    )
    assert draft.status_code == 201, draft.text
    removed = r.messages[2]
    patched = await client.patch(
        f"/v1/messaging-messages/{removed}/",
        json=doc("messaging-messages", {"removed": True}, removed),
        headers=org.admin,
    )
    assert patched.status_code == 200, patched.text
    for message_id in (r.other_message, str(uuid.uuid4()), draft.json()["data"]["id"], removed):
        response = await bookmark(client, r.patient_token, **mark(r.channel, message_id))
        assert response.status_code == 404
        assert error_source(response) == {"pointer": "/data/attributes/message-id"}
    unknown_channel = await bookmark(
        client, r.patient_token, **mark(str(uuid.uuid4()), r.messages[0])
    )
    assert unknown_channel.status_code == 404
    assert error_source(unknown_channel) == {"pointer": "/data/attributes/channel-id"}
    assert await ids(client, r.patient_token) == []


async def test_only_subscribers_bookmark(client: httpx.AsyncClient, org: Org) -> None:
    r = await room(client, org)
    # An individual outside the channel cannot see it: it is not found.
    hidden = await bookmark(client, r.outsider_token, **mark(r.channel, r.messages[0]))
    assert hidden.status_code == 404
    assert error_source(hidden) == {"pointer": "/data/attributes/channel-id"}
    # A staff key acting for that individual is told why.
    refused = await bookmark(
        client, org.staff, **mark(r.channel, r.messages[0], **{"individual-id": r.outsider})
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "not-a-subscriber"


async def test_staff_act_for_any_individual(client: httpx.AsyncClient, org: Org) -> None:
    r = await room(client, org)
    made = await bookmark(
        client, org.staff, **mark(r.channel, r.messages[0], **{"individual-id": r.provider})
    )
    assert made.status_code == 201, made.text
    assert made.json()["data"]["attributes"]["created-by"] == {
        "id": r.provider,
        "type": "individuals",
    }
    by_query = await client.post(
        URL,
        params={"individual-id": r.patient},
        json=doc("messaging-bookmarks", mark(r.channel, r.messages[1])),
        headers=org.admin,
    )
    assert by_query.status_code == 201, by_query.text
    assert by_query.json()["data"]["attributes"]["created-by"] == {
        "id": r.patient,
        "type": "individuals",
    }
    disagree = await client.post(
        URL,
        params={"individual-id": r.patient},
        json=doc(
            "messaging-bookmarks", mark(r.channel, r.messages[1], **{"individual-id": r.provider})
        ),
        headers=org.admin,
    )
    assert disagree.status_code == 400
    nobody = await bookmark(
        client, org.staff, **mark(r.channel, r.messages[0], **{"individual-id": str(uuid.uuid4())})
    )
    assert nobody.status_code == 404
    assert error_source(nobody) == {"pointer": "/data/attributes/individual-id"}

    everyone = await ids(client, org.staff)
    assert sorted(everyone) == sorted([made.json()["data"]["id"], by_query.json()["data"]["id"]])
    assert await ids(client, org.readonly, **{"individual-id": r.provider}) == [
        made.json()["data"]["id"]
    ]
    # Staff remove an individual's bookmark; the response shows what was removed.
    removed = await client.delete(f"{URL}{made.json()['data']['id']}/", headers=org.staff)
    assert removed.status_code == 200
    assert removed.json()["data"]["attributes"]["message"] == {"id": r.messages[0]}
    assert await ids(client, org.staff) == [by_query.json()["data"]["id"]]


async def test_individual_tokens_see_and_manage_only_their_own(
    client: httpx.AsyncClient, org: Org
) -> None:
    r = await room(client, org)
    theirs = await bookmark(
        client, org.staff, **mark(r.other_channel, r.other_message, **{"individual-id": r.outsider})
    )
    assert theirs.status_code == 201
    theirs_id = theirs.json()["data"]["id"]
    mine = await bookmark(client, r.patient_token, **mark(r.channel, r.messages[0]))
    mine_id = mine.json()["data"]["id"]

    assert await ids(client, r.patient_token) == [mine_id]
    assert await ids(client, r.outsider_token) == [theirs_id]
    assert (await client.get(f"{URL}{theirs_id}/", headers=r.patient_token)).status_code == 404
    assert (await client.delete(f"{URL}{theirs_id}/", headers=r.patient_token)).status_code == 404
    for_other = await bookmark(
        client, r.patient_token, **mark(r.channel, r.messages[1], **{"individual-id": r.provider})
    )
    assert for_other.status_code == 403
    listing = await client.get(URL, params={"individual-id": r.outsider}, headers=r.patient_token)
    assert listing.status_code == 403

    assert (await client.delete(f"{URL}{mine_id}/", headers=r.patient_token)).status_code == 200
    assert (await client.get(f"{URL}{mine_id}/", headers=r.patient_token)).status_code == 404
    assert (await client.get(f"{URL}{theirs_id}/", headers=r.outsider_token)).status_code == 200


async def test_roles_and_organizations(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    r = await room(client, org)
    readonly = await bookmark(
        client, org.readonly, **mark(r.channel, r.messages[0], **{"individual-id": r.patient})
    )
    assert readonly.status_code == 403
    made = await bookmark(client, r.patient_token, **mark(r.channel, r.messages[0]))
    ident = made.json()["data"]["id"]
    assert (await client.get(f"{URL}{ident}/", headers=org.readonly)).status_code == 200
    assert (await client.delete(f"{URL}{ident}/", headers=org.readonly)).status_code == 403

    assert (await client.get(f"{URL}{ident}/", headers=other_org.admin)).status_code == 404
    assert (await client.delete(f"{URL}{ident}/", headers=other_org.admin)).status_code == 404
    assert await ids(client, other_org.admin) == []
    foreign = await bookmark(
        client, other_org.staff, **mark(r.channel, r.messages[0], **{"individual-id": r.patient})
    )
    assert foreign.status_code == 404
    assert await ids(client, org.staff, **{"organization-id": org.id}) == [ident]
    assert await ids(client, org.staff, **{"organization-id": other_org.id}) == []
    assert (await client.get(f"{URL}not-a-uuid/", headers=org.staff)).status_code == 404


async def test_list_parameters_and_bodies(client: httpx.AsyncClient, org: Org) -> None:
    r = await room(client, org)
    for params, parameter in (
        ({"filter[channel-id]": "nope"}, "filter[channel-id]"),
        ({"organization-id": "nope"}, "organization-id"),
        ({"individual-id": "nope"}, "individual-id"),
        ({"filter[message-id]": r.messages[0]}, "filter[message-id]"),
        ({"sort": "message"}, "sort"),
        ({"page[limit]": "0"}, "page[limit]"),
    ):
        response = await client.get(URL, params=params, headers=org.staff)
        assert response.status_code == 400, params
        assert error_source(response) == {"parameter": parameter}, params

    for attributes, pointer in (
        ({"channel-id": r.channel}, "/data/attributes/message-id"),
        (mark("nope", r.messages[0]), "/data/attributes/channel-id"),
        (
            mark(r.channel, r.messages[0], **{"allow-multi-message": "yes"}),
            "/data/attributes/allow-multi-message",
        ),
        (mark(r.channel, r.messages[0], colour="red"), "/data/attributes/colour"),
    ):
        response = await bookmark(client, r.patient_token, **attributes)
        assert response.status_code == 400, attributes
        assert error_source(response) == {"pointer": pointer}
    mismatch = await client.post(
        URL, json=doc("bookmarks", mark(r.channel, r.messages[0])), headers=r.patient_token
    )
    assert mismatch.status_code == 409
    assert await ids(client, org.staff) == []


async def test_an_api_key_naming_nobody_bookmarks_for_the_organization(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    r = await room(client, org)
    patients = await bookmark(client, r.patient_token, **mark(r.channel, r.messages[0]))
    patients_id = patients.json()["data"]["id"]

    # The seed's request sample as printed: no individual-id anywhere.
    first = await bookmark(client, org.admin, **mark(r.channel, r.messages[0]))
    assert first.status_code == 201, first.text
    first_id = first.json()["data"]["id"]
    assert first_id != patients_id
    assert first.json()["data"]["attributes"]["created-by"] == {
        "id": org.admin_key_id,
        "type": "api-keys",
    }
    assert first.json()["data"]["attributes"]["organization-id"] == org.id
    audited = await client.get(
        "/v1/audit-events/", params={"filter[resource-id]": first_id}, headers=org.admin
    )
    assert [
        (e["attributes"]["action"], e["attributes"]["actor-id"]) for e in audited.json()["data"]
    ] == [("created", org.admin_key_id)]

    # The same message again: the same bookmark, made by whichever key.
    again = await bookmark(client, org.staff, **mark(r.channel, r.messages[0]))
    assert again.json()["data"]["id"] == first_id

    # A new one replaces the organization's others in the channel, never an individual's.
    second = await bookmark(client, org.staff, **mark(r.channel, r.messages[1]))
    assert second.status_code == 201, second.text
    second_id = second.json()["data"]["id"]
    assert second.json()["data"]["attributes"]["created-by"]["type"] == "api-keys"
    assert (await client.get(f"{URL}{first_id}/", headers=org.staff)).status_code == 404
    third = await bookmark(
        client, org.staff, **mark(r.channel, r.messages[2], **{"allow-multi-message": True})
    )
    third_id = third.json()["data"]["id"]

    # Keys list the organization's bookmarks with everyone's; individual-id narrows to one
    # person's, and the organization's are nobody's.
    assert sorted(await ids(client, org.readonly)) == sorted([patients_id, second_id, third_id])
    assert await ids(client, org.staff, **{"individual-id": r.patient}) == [patients_id]
    assert await ids(client, org.staff, **{"individual-id": r.provider}) == []

    # The channel shows a key the organization's bookmark, an individual its own.
    seen_by_key = await client.get(f"/v1/messaging-channels/{r.channel}/", headers=org.staff)
    assert seen_by_key.json()["data"]["attributes"]["bookmark"] == {
        "id": third_id,
        "message-id": r.messages[2],
    }
    seen_by_patient = await client.get(
        f"/v1/messaging-channels/{r.channel}/", headers=r.patient_token
    )
    assert seen_by_patient.json()["data"]["attributes"]["bookmark"] == {
        "id": patients_id,
        "message-id": r.messages[0],
    }

    # An individual token sees only its own: the organization's bookmarks are not its.
    assert await ids(client, r.patient_token) == [patients_id]
    for method in ("GET", "DELETE"):
        hidden = await client.request(method, f"{URL}{second_id}/", headers=r.patient_token)
        assert hidden.status_code == 404, method

    # Another organization finds nothing.
    for method in ("GET", "DELETE"):
        foreign = await client.request(method, f"{URL}{second_id}/", headers=other_org.admin)
        assert foreign.status_code == 404, method
    assert await ids(client, other_org.admin) == []

    removed = await client.delete(f"{URL}{second_id}/", headers=org.staff)
    assert removed.status_code == 200
    assert removed.json()["data"]["attributes"]["created-by"]["type"] == "api-keys"
    assert sorted(await ids(client, org.staff)) == sorted([patients_id, third_id])
