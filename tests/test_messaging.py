"""Secure messaging over HTTP: a provider and two patients talk in a care-team channel."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from courier.core.tenancy import unscoped
from courier.domains.messaging import jobs as messaging_jobs
from courier.jobs import run_until_idle
from courier.models.event import Event
from courier.models.messaging import MessagingChannel, MessagingSubscriber
from tests import factories
from tests.conftest import Org, create_org, doc
from tests.notify_support import app_of
from tests.support import count_queries

CHANNELS = "/v1/messaging-channels/"
MESSAGES = "/v1/messaging-messages/"

# --- helpers ---------------------------------------------------------------------------------


async def make_individual(
    client: httpx.AsyncClient, org: Org, first: str, last: str, **attributes: Any
) -> str:
    attributes.update({"first-name": first, "last-name": last})
    response = await client.post(
        "/v1/individuals/", json=doc("individuals", attributes), headers=org.admin
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def make_token(client: httpx.AsyncClient, org: Org, individual_id: str) -> dict[str, str]:
    response = await client.post(
        "/v1/access-tokens/",
        json=doc("access-tokens", {"individual-id": individual_id}),
        headers=org.staff,
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['data']['attributes']['token']}"}


async def make_group(
    client: httpx.AsyncClient, org: Org, name: str, members: list[str], leaders: list[str]
) -> str:
    response = await client.post(
        "/v1/individual-groups/",
        json=doc(
            "individual-groups",
            {"name": name, "individual-ids": members, "leader-ids": leaders},
        ),
        headers=org.admin,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def make_channel(
    client: httpx.AsyncClient, org: Org, attributes: dict[str, Any], **params: str
) -> dict[str, Any]:
    response = await client.post(
        CHANNELS, json=doc("messaging-channels", attributes), headers=org.staff, params=params
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def post(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    channel_id: str,
    text: str,
    **attributes: Any,
) -> httpx.Response:
    attributes.update({"channel-id": channel_id, "message": text})
    return await client.post(MESSAGES, json=doc("messaging-messages", attributes), headers=headers)


async def posted(
    client: httpx.AsyncClient, headers: dict[str, str], channel_id: str, text: str, **attrs: Any
) -> dict[str, Any]:
    response = await post(client, headers, channel_id, text, **attrs)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def channel_view(
    client: httpx.AsyncClient, headers: dict[str, str], channel_id: str, **params: str
) -> dict[str, Any]:
    response = await client.get(f"{CHANNELS}{channel_id}/", headers=headers, params=params)
    assert response.status_code == 200, response.text
    attributes: dict[str, Any] = response.json()["data"]["attributes"]
    return attributes


async def unread(client: httpx.AsyncClient, headers: dict[str, str], channel_id: str) -> int:
    view = await channel_view(client, headers, channel_id)
    assert view["caller-has-new-message"] is (view["caller-new-message-count"] > 0)
    count: int = view["caller-new-message-count"]
    return count


async def analyse_pending(client: httpx.AsyncClient) -> int:
    """Run the message-analysis jobs that are due; how many jobs ran."""
    app = app_of(client)
    kinds = [messaging_jobs.analysis.ANALYSE_JOB]  # the module registers its handler
    return await run_until_idle(app.state.database, app.state.settings, kinds=kinds)


async def message_view(
    client: httpx.AsyncClient, headers: dict[str, str], message_id: str, **params: str
) -> dict[str, Any]:
    response = await client.get(f"{MESSAGES}{message_id}/", headers=headers, params=params)
    assert response.status_code == 200, response.text
    attributes: dict[str, Any] = response.json()["data"]["attributes"]
    return attributes


async def patch_message(
    client: httpx.AsyncClient, headers: dict[str, str], message_id: str, attributes: dict[str, Any]
) -> httpx.Response:
    return await client.patch(
        f"{MESSAGES}{message_id}/",
        json=doc("messaging-messages", attributes, message_id),
        headers=headers,
    )


async def action(
    client: httpx.AsyncClient, headers: dict[str, str], path: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.post(path, json=body, headers=headers)


async def patch_channel(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    channel_id: str,
    operations: list[dict[str, Any]],
    **extra: str,
) -> httpx.Response:
    return await client.patch(
        f"{CHANNELS}{channel_id}/",
        json={"data": {"type": "messaging-channels", "id": channel_id, "attributes": operations}},
        headers={**headers, **extra},
    )


def listed_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    first: dict[str, Any] = response.json()["errors"][0]
    return first


async def events_of(app: Any, resource_id: str) -> list[Event]:
    async with app.state.database.sessionmaker() as session:
        stmt = unscoped(
            select(Event).where(Event.resource_id == uuid.UUID(resource_id)).order_by(Event.seq),
            "test reads the events outbox",
        )
        return list((await session.execute(stmt)).scalars().all())


@dataclass
class Clinic:
    org: Org
    provider: str
    alice: str
    bob: str
    group: str
    channel: str
    as_provider: dict[str, str]
    as_alice: dict[str, str]
    as_bob: dict[str, str]


async def clinic(client: httpx.AsyncClient, org: Org) -> Clinic:
    provider = await make_individual(client, org, "Grace", "Hopper", **{"account-type": "provider"})
    alice = await make_individual(
        client, org, "Alice", "Patient", photo="https://img.clinic.test/alice.png"
    )
    bob = await make_individual(client, org, "Bob", "Patient", **{"birth-date": "1980-02-03"})
    group = await make_group(client, org, "Knee clinic", [provider, alice, bob], [provider])
    channel = await make_channel(client, org, {"individual-group-id": group, "label": "knees"})
    return Clinic(
        org,
        provider,
        alice,
        bob,
        group,
        channel["id"],
        await make_token(client, org, provider),
        await make_token(client, org, alice),
        await make_token(client, org, bob),
    )


# --- the conversation ------------------------------------------------------------------------


async def test_a_conversation_as_each_person_sees_it(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    c = await clinic(client, org)
    people = {"provider": c.as_provider, "alice": c.as_alice, "bob": c.as_bob}

    async def counts() -> dict[str, int]:
        return {name: await unread(client, headers, c.channel) for name, headers in people.items()}

    # Everyone sees the new channel, named after its group, with nothing unread.
    for headers in people.values():
        assert listed_ids(await client.get(CHANNELS, headers=headers)) == [c.channel]
    view = await channel_view(client, c.as_alice, c.channel)
    assert view["name"] == "Knee clinic"
    assert view["label"] == "knees"
    assert view["last-message"] is None
    assert view["individual-group"]["individuals-count"] == 3
    assert view["individual-group"]["leader-ids"] == [c.provider]
    subscribers = {s["id"]: s for s in view["subscribers"]}
    assert set(subscribers) == {c.provider, c.alice, c.bob}
    assert subscribers[c.provider]["admin"] is True and subscribers[c.alice]["admin"] is False
    # A patient sees the other patient's name but not their birth date or contact details.
    assert subscribers[c.bob]["first-name"] == "Bob"
    assert subscribers[c.bob]["birth-date"] is None and subscribers[c.bob]["email"] is None
    staff_view = await channel_view(client, c.org.staff, c.channel)
    assert {s["id"]: s for s in staff_view["subscribers"]}[c.bob]["birth-date"] == "1980-02-03"
    assert await counts() == {"provider": 0, "alice": 0, "bob": 0}

    # Alice writes; she has read what she wrote, the others have one unread message.
    first = await posted(
        client, c.as_alice, c.channel, "The pain in my knee is terrible and getting worse."
    )
    attrs = first["attributes"]
    assert attrs["seq"] == 1 and attrs["ack"] is True and attrs["draft"] is False
    assert attrs["individual-id"] == c.alice and attrs["first-name"] == "Alice"
    assert attrs["user-type"] == "participant"
    # Sentiment and phrases come from a job after the post, not in the request.
    assert attrs["analyzed"] is False and attrs["sentiment"] is None
    assert attrs["phrases"] == {}
    await analyse_pending(client)
    analysed = await message_view(client, c.as_bob, first["id"])
    assert analysed["analyzed"] is True and analysed["sentiment"] == "negative"
    assert analysed["phrases"] == {}  # only with include-phrases
    assert attrs["attachments"] == [] and attrs["reactions"] == []
    assert attrs["posted-time"].endswith("Z")
    assert await counts() == {"provider": 1, "alice": 0, "bob": 1}
    for headers in people.values():
        last = (await channel_view(client, headers, c.channel))["last-message"]
        assert last["id"] == first["id"] and last["removed"] is False
        assert last["message"] == "The pain in my knee is terrible and getting worse."

    # The provider reads it: the receipts say so, Bob has still not read it.
    acked = await action(client, c.as_provider, f"{MESSAGES}{first['id']}/ack/", {})
    assert acked.status_code == 201, acked.text
    assert acked.json()["data"]["attributes"]["ack"] is True
    assert await counts() == {"provider": 0, "alice": 0, "bob": 1}
    receipts = await client.get(f"{MESSAGES}{first['id']}/get-receipts/", headers=c.as_alice)
    assert receipts.status_code == 200, receipts.text
    assert [r["individual-id"] for r in receipts.json()["read"]] == [c.provider]
    assert receipts.json()["read"][0]["individual-first-name"] == "Grace"
    assert receipts.json()["read"][0]["ack-time"].endswith("Z")
    assert [r["individual-id"] for r in receipts.json()["unread"]] == [c.bob]

    # The provider answers.
    second = await posted(
        client,
        c.as_provider,
        c.channel,
        "Thank you for telling me, I am happy to help. Please rest and ice the knee.",
    )
    assert second["attributes"]["seq"] == 2
    await analyse_pending(client)
    assert (await message_view(client, c.as_bob, second["id"]))["sentiment"] == "positive"
    assert second["attributes"]["user-type"] == "provider"
    assert await counts() == {"provider": 0, "alice": 1, "bob": 2}
    bob_list = await client.get(
        MESSAGES, headers=c.as_bob, params={"channel-id": c.channel, "include-read-receipts": "1"}
    )
    assert listed_ids(bob_list) == [second["id"], first["id"]]  # newest first
    bob_seen = {m["id"]: m["attributes"] for m in bob_list.json()["data"]}
    assert bob_seen[first["id"]]["ack"] is False
    assert [r["individual-id"] for r in bob_seen[first["id"]]["read-receipts"]] == [c.provider]
    assert [r["individual-id"] for r in bob_seen[second["id"]]["read-receipts"]] == []

    # Alice corrects her message; everyone sees the new text and its sentiment.
    edited = await patch_message(
        client, c.as_alice, first["id"], {"message": "My knee feels much better today, thanks!"}
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["data"]["attributes"]["analyzed"] is False
    assert edited.json()["data"]["attributes"]["sentiment"] is None  # the old text's is gone
    await analyse_pending(client)
    bob_sees = await message_view(client, c.as_bob, first["id"], **{"include-phrases": "true"})
    assert bob_sees["message"] == "My knee feels much better today, thanks!"
    assert bob_sees["sentiment"] == "positive"
    assert bob_sees["phrases"]["keywords"], bob_sees["phrases"]
    # Bob may not change Alice's words.
    refused = await patch_message(client, c.as_bob, first["id"], {"message": "hijacked"})
    assert error(refused, 403)["code"] == "forbidden"
    refused = await patch_message(client, c.as_bob, first["id"], {"removed": True})
    assert refused.status_code == 403
    assert (await message_view(client, c.as_alice, first["id"]))["removed"] is False

    # Reactions: one per person and type, visible to everyone.
    like = f"{MESSAGES}{second['id']}/add-reaction/"
    for _ in range(2):
        response = await action(client, c.as_bob, like, {"reaction-type": "like"})
        assert response.status_code == 201, response.text
    response = await action(client, c.as_alice, like, {"reaction-type": "love"})
    reactions = response.json()["data"]["attributes"]["reactions"]
    assert [(r["individual-id"], r["reaction-type"]) for r in reactions] == [
        (c.bob, "like"),
        (c.alice, "love"),
    ]
    assert reactions[0]["first-name"] == "Bob"
    bad = await action(client, c.as_bob, like, {"reaction-type": "angry"})
    assert error(bad, 400)["source"]["pointer"] == "/reaction-type"
    unlike = f"{MESSAGES}{second['id']}/delete-reaction/"
    missing = await action(client, c.as_bob, unlike, {"reaction-type": "wow"})
    assert missing.status_code == 404
    removed = await action(client, c.as_bob, unlike, {"reaction-type": "like"})
    assert removed.status_code == 201, removed.text
    seen = await message_view(client, c.as_provider, second["id"])
    assert [(r["individual-id"], r["reaction-type"]) for r in seen["reactions"]] == [
        (c.alice, "love")
    ]
    # Reading is an ack, not a reaction: counts did not move.
    assert await counts() == {"provider": 0, "alice": 1, "bob": 2}

    # Bob writes, then thinks better of it and removes it: the text is gone for everyone.
    third = await posted(client, c.as_bob, c.channel, "I found an old prescription of 80mg")
    assert await counts() == {"provider": 1, "alice": 2, "bob": 0}
    gone = await patch_message(client, c.as_bob, third["id"], {"removed": True})
    assert gone.status_code == 200, gone.text
    for headers in people.values():
        shown = await message_view(client, headers, third["id"], **{"include-phrases": "1"})
        assert shown["message"] == "" and shown["removed"] is True
        assert shown["sentiment"] is None and shown["phrases"] == {}
        last = (await channel_view(client, headers, c.channel))["last-message"]
        assert last == {
            "id": third["id"],
            "message": "",
            "posted-time": third["attributes"]["posted-time"],
            "removed": True,
        }
    # A removed message is not found by its old words, and it cannot come back.
    search = await client.get(
        MESSAGES,
        headers=c.org.staff,
        params={"channel-id": c.channel, "filter[text]": "prescription"},
    )
    assert listed_ids(search) == []
    back = await patch_message(client, c.as_bob, third["id"], {"removed": False})
    assert error(back, 409)["code"] == "removed"
    twice = await patch_message(client, c.as_bob, third["id"], {"removed": True})
    assert twice.status_code == 200  # idempotent, and announced only once (below)
    # It keeps its place in the conversation: still counted until read.
    assert await counts() == {"provider": 1, "alice": 2, "bob": 0}

    # A draft is the provider's alone until posted.
    draft = await posted(client, c.as_provider, c.channel, "Draft: see you on", draft=True)
    assert draft["attributes"]["draft"] is True and draft["attributes"]["seq"] is None
    assert draft["attributes"]["posted-time"] is None
    hidden = await client.get(f"{MESSAGES}{draft['id']}/", headers=c.as_alice)
    assert hidden.status_code == 404
    alice_list = await client.get(MESSAGES, headers=c.as_alice, params={"channel-id": c.channel})
    assert draft["id"] not in listed_ids(alice_list)
    provider_list = await client.get(
        MESSAGES, headers=c.as_provider, params={"channel-id": c.channel}
    )
    assert listed_ids(provider_list)[0] == draft["id"]
    assert await counts() == {"provider": 1, "alice": 2, "bob": 0}
    assert (await channel_view(client, c.as_alice, c.channel))["last-message"]["id"] == third["id"]
    published = await patch_message(
        client,
        c.as_provider,
        draft["id"],
        {"message": "See you on Monday at 9.", "draft": False},
    )
    assert published.status_code == 200, published.text
    assert published.json()["data"]["attributes"]["seq"] == 4
    assert published.json()["data"]["attributes"]["posted-time"] is not None
    # Posting acknowledged everything before it for the provider.
    assert await counts() == {"provider": 0, "alice": 3, "bob": 1}
    last = (await channel_view(client, c.as_alice, c.channel))["last-message"]
    assert last["id"] == draft["id"] and last["message"] == "See you on Monday at 9."
    again = await patch_message(client, c.as_provider, draft["id"], {"draft": True})
    assert error(again, 409)["code"] == "posted"

    # Alice reads up to the provider's answer (seq 2): two left.
    await action(client, c.as_alice, f"{MESSAGES}{second['id']}/ack/", {})
    assert await counts() == {"provider": 0, "alice": 2, "bob": 1}
    read = await client.get(
        MESSAGES, headers=c.as_alice, params={"channel-id": c.channel, "acknowledged": "true"}
    )
    assert listed_ids(read) == [second["id"], first["id"]]
    unread_list = await client.get(
        MESSAGES, headers=c.as_alice, params={"channel-id": c.channel, "acknowledged": "false"}
    )
    assert listed_ids(unread_list) == [draft["id"], third["id"]]
    # An older ack never moves her horizon back ...
    await action(client, c.as_alice, f"{MESSAGES}{first['id']}/ack/", {})
    assert await unread(client, c.as_alice, c.channel) == 2
    # ... unless she asks for it.
    await action(client, c.as_alice, f"{MESSAGES}{first['id']}/ack/", {"allow-past": True})
    assert await unread(client, c.as_alice, c.channel) == 3
    # Reading the newest message reads everything.
    await action(client, c.as_alice, f"{MESSAGES}{draft['id']}/ack/", {})
    assert await counts() == {"provider": 0, "alice": 0, "bob": 1}
    receipts = await client.get(f"{MESSAGES}{draft['id']}/get-receipts/", headers=c.as_bob)
    assert [r["individual-id"] for r in receipts.json()["read"]] == [c.alice]
    assert [r["individual-id"] for r in receipts.json()["unread"]] == [c.bob]

    # Every change was announced to the channel's subscribers (a draft's to its author only).
    everyone = sorted([c.provider, c.alice, c.bob])
    first_events = await events_of(app, first["id"])
    assert [e.type for e in first_events][:5] == [
        "messaging-messages.created",
        "messaging-messages.analyzed",  # its sentiment and phrases are there
        "messaging-messages.acked",
        "messaging-messages.updated",
        "messaging-messages.analyzed",  # the edited text's
    ]
    assert all(sorted(e.individual_ids) == everyone for e in first_events)
    third_types = [e.type for e in await events_of(app, third["id"])]
    assert third_types == ["messaging-messages.created", "messaging-messages.removed"]
    draft_events = await events_of(app, draft["id"])
    assert draft_events[0].type == "messaging-messages.created"
    assert draft_events[0].individual_ids == [c.provider]
    assert draft_events[1].type == "messaging-messages.posted"
    assert sorted(draft_events[1].individual_ids) == everyone
    reaction_types = [e.type for e in await events_of(app, second["id"])]
    assert reaction_types.count("messaging-messages.reacted") == 2  # the repeated like: once
    assert reaction_types.count("messaging-messages.unreacted") == 1


async def test_drafts_and_author_rules(client: httpx.AsyncClient, org: Org) -> None:
    c = await clinic(client, org)
    # Staff post on behalf of someone, and must say whom.
    missing = await post(client, org.staff, c.channel, "hello")
    assert error(missing, 400)["source"]["pointer"] == "/data/attributes/individual-id"
    on_behalf = await posted(
        client, org.staff, c.channel, "Your results are in.", **{"individual-id": c.provider}
    )
    assert on_behalf["attributes"]["individual-id"] == c.provider
    assert await unread(client, c.as_alice, c.channel) == 1
    # An individual token cannot write as someone else, nor read as someone else.
    impostor = await post(client, c.as_alice, c.channel, "hi", **{"individual-id": c.bob})
    assert impostor.status_code == 403
    peek = await client.get(CHANNELS, headers=c.as_alice, params={"individual-id": c.bob})
    assert peek.status_code == 403
    # Empty messages are refused; empty drafts are fine.
    blank = await post(client, c.as_alice, c.channel, "   ")
    assert error(blank, 400)["source"]["pointer"] == "/data/attributes/message"
    draft = await posted(client, c.as_alice, c.channel, "", draft=True)
    publish_blank = await patch_message(client, c.as_alice, draft["id"], {"draft": False})
    assert publish_blank.status_code == 400
    # Staff edit a draft by naming its author; naming anyone else finds no draft.
    wrong = await patch_message(
        client, org.staff, draft["id"], {"individual-id": c.bob, "message": "x"}
    )
    assert wrong.status_code == 404
    right = await patch_message(
        client,
        org.staff,
        draft["id"],
        {"individual-id": c.alice, "message": "Is the clinic open on Sunday?", "draft": False},
    )
    assert right.status_code == 200, right.text
    assert right.json()["data"]["attributes"]["seq"] == 2
    # A staff key must name the author to edit; an admin key may remove (moderation).
    nameless = await patch_message(client, org.staff, on_behalf["id"], {"message": "edited"})
    assert error(nameless, 400)["source"]["pointer"] == "/data/attributes/individual-id"
    staff_removal = await patch_message(client, org.staff, on_behalf["id"], {"removed": True})
    assert staff_removal.status_code == 400
    moderated = await patch_message(
        client, org.admin, right.json()["data"]["id"], {"removed": True}
    )
    assert moderated.status_code == 200, moderated.text
    assert moderated.json()["data"]["attributes"]["message"] == ""
    # A readonly key reads but does not post, edit or ack.
    readonly = await post(client, org.readonly, c.channel, "hi", **{"individual-id": c.provider})
    assert readonly.status_code == 403
    listing = await client.get(MESSAGES, headers=org.readonly, params={"channel-id": c.channel})
    assert listed_ids(listing) == [right.json()["data"]["id"], on_behalf["id"]]
    ack = await action(
        client, org.readonly, f"{MESSAGES}{on_behalf['id']}/ack/", {"individual-id": c.bob}
    )
    assert ack.status_code == 403
    # A staff key acks for someone: it must name them, and they must be in the channel.
    nobody = await action(client, org.staff, f"{MESSAGES}{on_behalf['id']}/ack/", {})
    assert error(nobody, 400)["source"]["pointer"] == "/individual-id"
    stranger = await make_individual(client, org, "Sam", "Stranger")
    outsider = await action(
        client, org.staff, f"{MESSAGES}{on_behalf['id']}/ack/", {"individual-id": stranger}
    )
    assert error(outsider, 422)["code"] == "not-a-subscriber"
    unknown = await action(
        client,
        org.staff,
        f"{MESSAGES}{on_behalf['id']}/ack/",
        {"individual-id": str(uuid.uuid4())},
    )
    assert error(unknown, 404)["source"]["pointer"] == "/individual-id"
    for_bob = await action(
        client,
        org.staff,
        f"{MESSAGES}{on_behalf['id']}/ack/",
        {"individual-id": c.bob, "ack-user-time": "2030-01-02T03:04:05.678+01:00"},
    )
    assert for_bob.status_code == 201, for_bob.text
    receipts = await client.get(f"{MESSAGES}{on_behalf['id']}/get-receipts/", headers=org.staff)
    by_reader = {r["individual-id"]: r for r in receipts.json()["read"]}
    assert by_reader[c.bob]["ack-user-time"] == "2030-01-02T02:04:05.678Z"
    naive = await action(
        client,
        org.staff,
        f"{MESSAGES}{on_behalf['id']}/ack/",
        {"individual-id": c.bob, "ack-user-time": "2030-01-02T03:04:05"},
    )
    assert error(naive, 400)["source"]["pointer"] == "/ack-user-time"
    assert await unread(client, c.as_bob, c.channel) == 1
    # auto-ack false: the author's unread messages stay unread.
    before = await unread(client, c.as_bob, c.channel)
    await posted(client, c.as_bob, c.channel, "One more question", **{"auto-ack": False})
    assert await unread(client, c.as_bob, c.channel) == before + 1
    # The seed's "auto-ack": "" means the default (acknowledge).
    await posted(client, c.as_bob, c.channel, "And another", **{"auto-ack": ""})
    assert await unread(client, c.as_bob, c.channel) == 0
    bad = await post(client, c.as_bob, c.channel, "x", **{"auto-ack": "maybe"})
    assert error(bad, 400)["source"]["pointer"] == "/data/attributes/auto-ack"
    # include-destinations are validated and kept.
    routed = await posted(
        client, c.as_bob, c.channel, "Text me too", **{"include-destinations": ["sms"]}
    )
    assert routed["attributes"]["destination"] == {"include-destinations": ["sms"]}
    bad = await post(client, c.as_bob, c.channel, "x", **{"include-destinations": ["fax"]})
    assert bad.status_code == 400


async def test_individual_tokens_see_only_their_channels(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    c = await clinic(client, org)
    private = await make_channel(client, org, {"individual-ids": [c.provider, c.bob]})
    note = await posted(client, c.as_bob, private["id"], "Just between us")
    # Alice does not see the private channel or its messages: 404, never 403.
    assert listed_ids(await client.get(CHANNELS, headers=c.as_alice)) == [c.channel]
    assert (await client.get(f"{CHANNELS}{private['id']}/", headers=c.as_alice)).status_code == 404
    assert (await client.get(f"{MESSAGES}{note['id']}/", headers=c.as_alice)).status_code == 404
    # Listing its messages is 404 too, as the channel is (an empty list would say it exists),
    # with or without other filters; a channel of nobody's is the same 404.
    for params in ({}, {"filter[text]": "us"}):
        listing = await client.get(
            MESSAGES, headers=c.as_alice, params={"channel-id": private["id"], **params}
        )
        assert error(listing, 404)["source"]["parameter"] == "channel-id"
    listing = await client.get(MESSAGES, headers=c.as_alice, params={"channel-id": c.channel})
    assert listed_ids(listing) == []
    nowhere = await client.get(
        MESSAGES, headers=c.as_alice, params={"channel-id": str(uuid.uuid4())}
    )
    assert error(nowhere, 404)["source"]["parameter"] == "channel-id"
    intrude = await post(client, c.as_alice, private["id"], "let me in")
    assert intrude.status_code == 404
    react = await action(
        client, c.as_alice, f"{MESSAGES}{note['id']}/add-reaction/", {"reaction-type": "lol"}
    )
    assert react.status_code == 404
    ack = await action(client, c.as_alice, f"{MESSAGES}{note['id']}/ack/", {})
    assert ack.status_code == 404
    receipts = await client.get(f"{MESSAGES}{note['id']}/get-receipts/", headers=c.as_alice)
    assert receipts.status_code == 404
    # Individual tokens do not manage channels.
    made = await client.post(
        CHANNELS,
        json=doc("messaging-channels", {"individual-ids": [c.alice]}),
        headers=c.as_alice,
    )
    assert made.status_code == 403
    for verb in ("archive", "unarchive", "set-sms"):
        body = {"active": False} if verb == "set-sms" else {}
        refused = await action(client, c.as_provider, f"{CHANNELS}{c.channel}/{verb}/", body)
        assert refused.status_code == 403, verb
    refused = await action(
        client, c.as_provider, f"{CHANNELS}{c.channel}/subscribe/", {"individual-ids": [c.bob]}
    )
    assert refused.status_code == 403
    refused = await patch_channel(
        client, c.as_provider, c.channel, [{"op": "replace", "path": "/name", "value": "x"}]
    )
    assert refused.status_code == 403
    # Another organization sees nothing of it.
    for path in (f"{CHANNELS}{c.channel}/", f"{MESSAGES}{note['id']}/"):
        assert (await client.get(path, headers=other_org.staff)).status_code == 404
    foreign = await post(
        client, other_org.staff, c.channel, "hello", **{"individual-id": c.provider}
    )
    assert foreign.status_code == 404
    other_list = await client.get(CHANNELS, headers=other_org.staff)
    assert c.channel not in listed_ids(other_list)


# --- channels --------------------------------------------------------------------------------


async def test_create_channel_checks_its_people(
    client: httpx.AsyncClient, org: Org, other_org: Org, app: Any
) -> None:
    nurse = await make_individual(client, org, "Nina", "Nurse", **{"account-type": "provider"})
    patient = await make_individual(client, org, "Pat", "Jones")
    foreign = await make_individual(client, other_org, "Fay", "Foreign")
    foreign_group = await make_group(client, other_org, "Theirs", [foreign], [])

    channel = await make_channel(
        client,
        org,
        {
            "individual-ids": [patient],
            "name": "  Pat's questions ",
            "floating": True,
            "subscription-type": "none",
            "event-settings": {"enabled": False},
            "organization-id": org.id,
        },
        **{"individual-id": nurse},
    )
    attrs = channel["attributes"]
    assert attrs["name"] == "Pat's questions"
    assert attrs["floating"] is True and attrs["archived"] is False
    assert attrs["event-settings"] == {"enabled": False}
    assert attrs["created-by"] == nurse and attrs["owner-id"] == nurse
    assert attrs["owner-first-name"] == "Nina" and attrs["owner-last-name"] == "Nurse"
    assert attrs["org-id"] == org.id
    assert attrs["individual-group"] is None and attrs["text-number"] is None
    assert attrs["can-enable-sms"] is False and attrs["with-sms"] is False
    subs = {s["id"]: s for s in attrs["subscribers"]}
    assert set(subs) == {patient, nurse} and subs[nurse]["admin"] is True
    # The creator's point of view: their own preferences are shown.
    assert attrs["caller-preferences"] == {"notify": "all", "pinned": False, "values": {}}
    created = await events_of(app, channel["id"])
    assert [e.type for e in created] == ["messaging-channels.created"]
    assert sorted(created[0].individual_ids) == sorted([patient, nurse])

    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"individual-ids": [foreign]}, 404, "/data/attributes/individual-ids"),
        ({"individual-group-id": foreign_group}, 404, "/data/attributes/individual-group-id"),
        ({"individual-ids": ["not-a-uuid"]}, 400, "/data/attributes/individual-ids/0"),
        ({}, 400, "/data/attributes/individual-ids"),
        ({"individual-ids": [patient], "floating": "yes"}, 400, "/data/attributes/floating"),
        ({"individual-ids": [patient], "colour": "red"}, 400, "/data/attributes/colour"),
        (
            {"individual-ids": [patient], "subscription-type": "Not Valid!"},
            400,
            "/data/attributes/subscription-type",
        ),
        (
            {"individual-ids": [patient], "event-settings": {"enabled": "no"}},
            400,
            "/data/attributes/event-settings/enabled",
        ),
    ]
    for attributes, status, pointer in cases:
        response = await client.post(
            CHANNELS, json=doc("messaging-channels", attributes), headers=org.staff
        )
        assert error(response, status)["source"]["pointer"] == pointer, attributes
    other = await client.post(
        CHANNELS,
        json=doc(
            "messaging-channels", {"individual-ids": [patient], "organization-id": other_org.id}
        ),
        headers=org.staff,
    )
    assert other.status_code == 404
    mismatch = await client.post(
        CHANNELS, json=doc("messaging-groups", {"individual-ids": [patient]}), headers=org.staff
    )
    assert mismatch.status_code == 409
    readonly = await client.post(
        CHANNELS,
        json=doc("messaging-channels", {"individual-ids": [patient]}),
        headers=org.readonly,
    )
    assert readonly.status_code == 403
    admin = await client.post(
        CHANNELS, json=doc("messaging-channels", {"individual-ids": [patient]}), headers=org.admin
    )
    assert admin.status_code == 201


async def test_channel_names_and_default_title(client: httpx.AsyncClient, org: Org) -> None:
    patient = await make_individual(client, org, "Pat", "Jones")
    group = await make_group(client, org, "Cardiology", [patient], [])
    named = await make_channel(client, org, {"individual-group-id": group, "name": "Heart"})
    unnamed = await make_channel(client, org, {"individual-ids": [patient]})
    assert named["attributes"]["name"] == "Cardiology"  # use-group-name defaults to true
    view = await channel_view(client, org.staff, named["id"], **{"use-group-name": "false"})
    assert view["name"] == "Heart"
    assert unnamed["attributes"]["name"] == "Care team"  # the organization's default title
    response = await client.post(
        "/v1/org-preferences/",
        json=doc(
            "org-preferences",
            {"name": "default-channel-title", "type": "json", "value-js": "Your care team"},
        ),
        headers=org.admin,
    )
    assert response.status_code == 201, response.text
    assert (await channel_view(client, org.staff, unnamed["id"]))["name"] == "Your care team"
    bad = await client.get(
        f"{CHANNELS}{named['id']}/", headers=org.staff, params={"use-group-name": "perhaps"}
    )
    assert error(bad, 400)["source"]["parameter"] == "use-group-name"
    bad = await client.get(
        f"{CHANNELS}{named['id']}/",
        headers=org.staff,
        params={"include-individual-group": "perhaps"},
    )
    assert error(bad, 400)["source"]["parameter"] == "include-individual-group"


async def test_channel_list_filters(client: httpx.AsyncClient) -> None:
    org = await create_org(client)
    alice = await make_individual(client, org, "Alice", "A")
    bob = await make_individual(client, org, "Bob", "B")
    group = await make_group(client, org, "Group", [alice], [])
    in_group = await make_channel(client, org, {"individual-group-id": group})
    floating = await make_channel(client, org, {"individual-ids": [bob], "floating": True})
    both = await make_channel(client, org, {"individual-ids": [alice, bob]})
    archived = await make_channel(client, org, {"individual-ids": [bob]})
    assert (
        await action(client, org.staff, f"{CHANNELS}{archived['id']}/archive/", {})
    ).status_code == 201

    async def ids(params: dict[str, str] | None = None) -> set[str]:
        return set(listed_ids(await client.get(CHANNELS, headers=org.staff, params=params)))

    everything = {in_group["id"], floating["id"], both["id"], archived["id"]}
    assert await ids() == everything
    assert await ids({"filter[archived]": "true"}) == {archived["id"]}
    assert await ids({"filter[archived]": "0"}) == everything - {archived["id"]}
    assert await ids({"filter[floating]": "true"}) == {floating["id"]}
    assert await ids({"filter[individual-group-id]": group}) == {in_group["id"]}
    assert await ids({"individual-id": alice}) == {in_group["id"], both["id"]}
    assert await ids({"participant-id": bob}) == {floating["id"], both["id"], archived["id"]}
    assert await ids({"individual-id": alice, "participant-id": bob}) == {both["id"]}
    assert await ids({"organization-id": org.id}) == everything
    assert await ids({"organization-id": str(uuid.uuid4())}) == set()

    # Time windows on last-modified-time: archiving touched the archived channel last.
    archived_at = (await channel_view(client, org.staff, archived["id"]))["last-modified-time"]
    assert await ids({"filter[cmp-last-modified-time]": f">={archived_at}"}) == {archived["id"]}
    window = await client.get(
        CHANNELS,
        headers=org.staff,
        params=[
            ("filter[cmp-last-modified-time]", ">2000-01-01T00:00:00Z"),
            ("filter[cmp-last-modified-time]", f"<{archived_at}"),
        ],
    )
    assert set(listed_ids(window)) == everything - {archived["id"]}

    # Paging: 1..50, default 50.
    page = await client.get(CHANNELS, headers=org.staff, params={"page[limit]": "2"})
    assert len(listed_ids(page)) == 2
    assert page.json()["meta"]["page[total]"] == 4
    assert (await client.get(CHANNELS, headers=org.staff)).json()["meta"]["page[limit]"] == 50
    bad_values = [
        ("page[limit]", "51"),
        ("page[limit]", "0"),
        ("filter[archived]", "maybe"),
        ("filter[floating]", "yes"),
        ("filter[individual-group-id]", "nope"),
        ("participant-id", "nope"),
        ("individual-id", "nope"),
        ("use-group-name", "2"),
        ("filter[cmp-last-modified-time]", "2024-01-01T00:00:00Z"),
        ("filter[cmp-last-modified-time]", ">2024-01-01T00:00:00"),
        ("filter[name]", "x"),
        ("sort", "name"),
    ]
    for name, value in bad_values:
        response = await client.get(CHANNELS, headers=org.staff, params={name: value})
        assert error(response, 400)["source"]["parameter"] == name, (name, value)


async def test_channel_list_queries_do_not_grow_with_the_page(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    provider = await make_individual(client, org, "Pro", "Vider", **{"account-type": "provider"})
    patients = [await make_individual(client, org, f"P{i}", "Patient") for i in range(3)]
    group = await make_group(client, org, "G", [provider, *patients], [provider])
    for patient in patients:
        made = await make_channel(client, org, {"individual-ids": [provider, patient]})
        await posted(client, org.staff, made["id"], "hello", **{"individual-id": patient})
    await make_channel(client, org, {"individual-group-id": group})

    async def queries(limit: int) -> int:
        with count_queries(app) as statements:
            response = await client.get(
                CHANNELS,
                headers=org.staff,
                params={"individual-id": provider, "page[limit]": str(limit)},
            )
        assert len(listed_ids(response)) == limit
        return len(statements)

    # The newest two already hold every kind of channel: a group's, and one with messages.
    assert await queries(2) == await queries(4)


async def test_channel_json_patch(client: httpx.AsyncClient, org: Org, app: Any) -> None:
    alice = await make_individual(client, org, "Alice", "A")
    owner = await make_individual(client, org, "Olga", "Owner")
    newcomer = await make_individual(client, org, "Nico", "New")
    group = await make_group(client, org, "Physio", [newcomer], [newcomer])
    channel = await make_channel(client, org, {"individual-ids": [alice], "name": "Old"})
    ident = channel["id"]
    text_number = (await factories.text_number(client, org))["id"]

    response = await patch_channel(
        client,
        org.staff,
        ident,
        [
            {"op": "replace", "path": "/name", "value": "New name"},
            {"op": "add", "path": "/label", "value": "urgent"},
            {"op": "replace", "path": "/floating", "value": True},
            {"op": "replace", "path": "/subscription-type", "value": "group"},
            {"op": "replace", "path": "/event-settings/enabled", "value": False},
            {"op": "replace", "path": "/text-number-id", "value": text_number},
            {"op": "replace", "path": "/owner-id", "value": owner},
        ],
    )
    assert response.status_code == 200, response.text
    attrs = response.json()["data"]["attributes"]
    assert attrs["name"] == "New name" and attrs["label"] == "urgent"
    assert attrs["floating"] is True and attrs["subscription-type"] == "group"
    assert attrs["event-settings"] == {"enabled": False}
    # The number is the channel's; texting Alice needs her phone and consent (test_sms_bridge).
    assert attrs["text-number"] == {"id": text_number} and attrs["can-enable-sms"] is False
    assert attrs["owner-first-name"] == "Olga"

    # Joining a group subscribes its members; removing the label clears it.
    response = await patch_channel(
        client,
        org.staff,
        ident,
        [
            {"op": "replace", "path": "/individual-group-id", "value": group},
            {"op": "remove", "path": "/label"},
            {"op": "replace", "path": "/event-settings", "value": {"enabled": True}},
        ],
    )
    attrs = response.json()["data"]["attributes"]
    assert attrs["label"] is None and attrs["event-settings"] == {"enabled": True}
    assert attrs["individual-group-id"] == group and attrs["name"] == "Physio"
    subs = {s["id"]: s for s in attrs["subscribers"]}
    assert set(subs) == {alice, newcomer} and subs[newcomer]["admin"] is True
    events = [e for e in await events_of(app, ident) if e.type == "messaging-channels.updated"]
    assert len(events) == 2 and sorted(events[-1].individual_ids) == sorted([alice, newcomer])

    # Removing the name leaves the default title (without the group's name).
    await patch_channel(client, org.staff, ident, [{"op": "remove", "path": "/name"}])
    view = await channel_view(client, org.staff, ident, **{"use-group-name": "false"})
    assert view["name"] == "Care team"

    # Invalid operations: 400 pointing at each, and nothing applied.
    response = await patch_channel(
        client,
        org.staff,
        ident,
        [
            {"op": "replace", "path": "/label", "value": "applied?"},
            {"op": "replace", "path": "/colour", "value": "red"},
            {"op": "move", "path": "/name"},  # no from
            {"op": "replace", "path": "/floating", "value": "yes"},
            {"op": "remove", "path": "/floating"},
            {"op": "replace", "path": "/name"},
            {"op": "replace", "path": "/archived", "value": True},
            {"op": "replace", "path": "name", "value": "no slash"},
        ],
    )
    assert response.status_code == 400, response.text
    pointers = [e["source"]["pointer"] for e in response.json()["errors"]]
    assert pointers == [
        "/data/attributes/1/path",
        "/data/attributes/2/from",
        "/data/attributes/3/value",
        "/data/attributes/4/op",
        "/data/attributes/5/value",
        "/data/attributes/6/path",
        "/data/attributes/7/path",
    ]
    assert (await channel_view(client, org.staff, ident))["label"] is None
    unknown_group = await patch_channel(
        client,
        org.staff,
        ident,
        [{"op": "replace", "path": "/individual-group-id", "value": str(uuid.uuid4())}],
    )
    assert error(unknown_group, 404)["source"]["pointer"] == "/data/attributes/0/value"
    not_a_list = await client.patch(
        f"{CHANNELS}{ident}/",
        json={"data": {"type": "messaging-channels", "id": ident, "attributes": {"name": "x"}}},
        headers=org.staff,
    )
    assert error(not_a_list, 400)["source"]["pointer"] == "/data/attributes"
    extra_key = await patch_channel(
        client, org.staff, ident, [{"op": "replace", "path": "/name", "value": "x", "from": "/a"}]
    )
    assert error(extra_key, 400)["source"]["pointer"] == "/data/attributes/0/from"

    # Type and id must match (409); If-Match must match the current ETag (412).
    wrong_type = await client.patch(
        f"{CHANNELS}{ident}/",
        json={"data": {"type": "messaging-messages", "id": ident, "attributes": []}},
        headers=org.staff,
    )
    assert wrong_type.status_code == 409
    wrong_id = await client.patch(
        f"{CHANNELS}{ident}/",
        json={"data": {"type": "messaging-channels", "id": str(uuid.uuid4()), "attributes": []}},
        headers=org.staff,
    )
    assert wrong_id.status_code == 409
    stale = await patch_channel(
        client,
        org.staff,
        ident,
        [{"op": "replace", "path": "/label", "value": "x"}],
        **{"If-Match": '"stale"'},
    )
    assert stale.status_code == 412
    etag = (await client.get(f"{CHANNELS}{ident}/", headers=org.staff)).headers["etag"]
    fresh = await patch_channel(
        client,
        org.staff,
        ident,
        [{"op": "replace", "path": "/label", "value": "x"}],
        **{"If-Match": etag},
    )
    assert fresh.status_code == 200, fresh.text
    assert (await client.get(f"{CHANNELS}{uuid.uuid4()}/", headers=org.staff)).status_code == 404
    missing = await patch_channel(client, org.staff, str(uuid.uuid4()), [])
    assert missing.status_code == 404
    assert (
        await patch_channel(client, org.readonly, ident, [{"op": "remove", "path": "/label"}])
    ).status_code == 403


async def test_archive_subscribe_preferences_sms_and_profiles(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    c = await clinic(client, org)
    base = f"{CHANNELS}{c.channel}"
    await posted(client, c.as_alice, c.channel, "Hello")

    # Archive: idempotent, no posting while archived, unarchive restores.
    for _ in range(2):
        response = await action(client, org.staff, f"{base}/archive/", {})
        assert response.status_code == 201, response.text
        assert response.json()["data"]["attributes"]["archived"] is True
    archived_events = [e.type for e in await events_of(app, c.channel)]
    assert archived_events.count("messaging-channels.archived") == 1
    refused = await post(client, c.as_alice, c.channel, "Anyone there?")
    assert error(refused, 409)["code"] == "archived"
    response = await action(client, org.staff, f"{base}/unarchive/", {})
    assert response.json()["data"]["attributes"]["archived"] is False
    await posted(client, c.as_alice, c.channel, "Anyone there?")

    # Subscribe a new nurse: she finds the history unread; unknown people are refused.
    nurse = await make_individual(client, org, "Nina", "Nurse", **{"account-type": "provider"})
    as_nurse = await make_token(client, org, nurse)
    assert (await client.get(f"{base}/", headers=as_nurse)).status_code == 404
    response = await action(client, org.staff, f"{base}/subscribe/", {"individual-ids": [nurse]})
    assert response.status_code == 201, response.text
    assert nurse in {s["id"] for s in response.json()["data"]["attributes"]["subscribers"]}
    assert await unread(client, as_nurse, c.channel) == 2
    unknown = await action(
        client, org.staff, f"{base}/subscribe/", {"individual-ids": [str(uuid.uuid4())]}
    )
    assert error(unknown, 404)["source"]["pointer"] == "/individual-ids"
    empty = await action(client, org.staff, f"{base}/subscribe/", {"individual-ids": []})
    assert error(empty, 400)["source"]["pointer"] == "/individual-ids"
    subscribed = [e for e in await events_of(app, c.channel) if e.type.endswith(".subscribed")]
    assert len(subscribed) == 1 and nurse in subscribed[0].individual_ids

    # Unsubscribe: the nurse loses the channel at once, and is told so.
    response = await action(client, org.staff, f"{base}/unsubscribe/", {"individual-ids": [nurse]})
    assert response.status_code == 201
    assert nurse not in {s["id"] for s in response.json()["data"]["attributes"]["subscribers"]}
    assert (await client.get(f"{base}/", headers=as_nurse)).status_code == 404
    left = [e for e in await events_of(app, c.channel) if e.type.endswith(".unsubscribed")]
    assert len(left) == 1 and nurse in left[0].individual_ids

    # Preferences: a patient sets her own; a key names whom.
    response = await action(
        client,
        c.as_alice,
        f"{base}/set-preferences/",
        {
            "values": [
                {"name": "notify", "value": "mentions"},
                {"name": "pinned", "value": True},
                {"name": "sound", "value": "chime"},
            ]
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["attributes"]["caller-preferences"] == {
        "notify": "mentions",
        "pinned": True,
        "values": {"sound": "chime"},
    }
    pinned = {s["id"]: s["pinned"] for s in response.json()["data"]["attributes"]["subscribers"]}
    assert pinned[c.alice] is True and pinned[c.bob] is False
    bob_view = await channel_view(client, c.as_bob, c.channel)
    assert bob_view["caller-preferences"]["notify"] == "all"
    bad = await action(
        client,
        c.as_alice,
        f"{base}/set-preferences/",
        {"values": [{"name": "notify", "value": "loud"}]},
    )
    assert error(bad, 400)["source"]["pointer"] == "/values/0/value"
    other = await action(
        client,
        c.as_alice,
        f"{base}/set-preferences/",
        {"individual-id": c.bob, "values": [{"name": "notify", "value": "none"}]},
    )
    assert other.status_code == 403
    nameless = await action(
        client,
        org.staff,
        f"{base}/set-preferences/",
        {"values": [{"name": "notify", "value": "none"}]},
    )
    assert error(nameless, 400)["source"]["pointer"] == "/individual-id"
    outsider = await action(
        client,
        org.staff,
        f"{base}/set-preferences/",
        {"individual-id": nurse, "values": [{"name": "notify", "value": "none"}]},
    )
    assert outsider.status_code == 422
    for_bob = await action(
        client,
        org.staff,
        f"{base}/set-preferences/",
        {"individual-id": c.bob, "values": [{"name": "notify", "value": "none"}]},
    )
    assert for_bob.json()["data"]["attributes"]["caller-preferences"]["notify"] == "none"
    assert (await channel_view(client, c.as_bob, c.channel))["caller-preferences"]["notify"] == (
        "none"
    )

    # SMS: needs a text number (then a participant with a phone and consent: the texting of
    # it is test_sms_bridge's); the messages given are kept on the channel.
    no_number = await action(client, org.staff, f"{base}/set-sms/", {"active": True})
    assert error(no_number, 422)["code"] == "no-text-number"
    unknown = await patch_channel(
        client,
        org.staff,
        c.channel,
        [{"op": "replace", "path": "/text-number-id", "value": str(uuid.uuid4())}],
    )
    assert error(unknown, 404)["source"]["pointer"] == "/data/attributes/0/value"
    number = await factories.text_number(client, org)
    await patch_channel(
        client,
        org.staff,
        c.channel,
        [{"op": "replace", "path": "/text-number-id", "value": number["id"]}],
    )
    messages = {
        "initial-message": "Reply here",
        "initial-message-js": {"en_US": "Reply here", "es_US": "Responda aquí"},
    }
    refused = await action(client, org.staff, f"{base}/set-sms/", {"active": True, **messages})
    assert error(refused, 422)["code"] in ("no-participant", "no-phone", "no-consent")
    response = await action(client, org.staff, f"{base}/set-sms/", {"active": False, **messages})
    assert response.status_code == 201, response.text
    attrs = response.json()["data"]["attributes"]
    assert attrs["with-sms"] is False and attrs["sms-initial-message"] == "Reply here"
    assert attrs["sms-initial-message-js"]["es_US"] == "Responda aquí"
    missing_active = await action(client, org.staff, f"{base}/set-sms/", {"initial-message": "x"})
    assert error(missing_active, 400)["source"]["pointer"] == "/active"
    too_long = await action(
        client, org.staff, f"{base}/set-sms/", {"active": False, "initial-message": "x" * 1025}
    )
    assert too_long.status_code == 400
    response = await action(client, org.staff, f"{base}/set-sms/", {"active": False})
    assert response.json()["data"]["attributes"]["with-sms"] is False
    assert response.json()["data"]["attributes"]["sms-initial-message"] == "Reply here"

    # Profiles: only of someone in the same channel.
    profile = await client.get(
        f"{base}/get-profile/",
        headers=c.as_bob,
        params={"individual-id": c.bob, "profile-individual-id": c.alice},
    )
    assert profile.status_code == 200, profile.text
    assert profile.json()["data"] == {
        "id": c.alice,
        "type": "individual-profiles",
        "attributes": {"photo": "https://img.clinic.test/alice.png"},
    }
    gone = await client.get(
        f"{base}/get-profile/", headers=c.as_bob, params={"profile-individual-id": nurse}
    )
    assert gone.status_code == 404
    missing = await client.get(f"{base}/get-profile/", headers=c.as_bob)
    assert error(missing, 400)["source"]["parameter"] == "profile-individual-id"
    nameless_key = await client.get(
        f"{base}/get-profile/", headers=org.staff, params={"profile-individual-id": c.alice}
    )
    assert error(nameless_key, 400)["source"]["parameter"] == "individual-id"
    as_staff = await client.get(
        f"{base}/get-profile/",
        headers=org.staff,
        params={"individual-id": c.provider, "profile-individual-id": c.alice},
    )
    assert as_staff.status_code == 200


async def test_group_provider_ack(client: httpx.AsyncClient, org: Org) -> None:
    first = await make_individual(client, org, "Doc", "One", **{"account-type": "provider"})
    second = await make_individual(client, org, "Doc", "Two", **{"account-type": "provider"})
    patient = await make_individual(client, org, "Pat", "Ient")
    channel = (await make_channel(client, org, {"individual-ids": [first, second, patient]}))["id"]
    tokens = {i: await make_token(client, org, i) for i in (first, second, patient)}
    question = await posted(client, tokens[patient], channel, "Can I take ibuprofen?")
    assert (await channel_view(client, tokens[first], channel))["group-provider-ack"] is False

    # Off (the default): each provider reads for themselves.
    await action(client, tokens[first], f"{MESSAGES}{question['id']}/ack/", {})
    assert await unread(client, tokens[first], channel) == 0
    assert await unread(client, tokens[second], channel) == 1

    response = await client.post(
        "/v1/org-preferences/",
        json=doc(
            "org-preferences", {"name": "group-provider-ack", "type": "json", "value-js": True}
        ),
        headers=org.admin,
    )
    assert response.status_code == 201, response.text
    follow_up = await posted(client, tokens[patient], channel, "And paracetamol?")
    assert await unread(client, tokens[second], channel) == 2
    # On: one provider's ack is the whole team's; the patient's own reading is untouched.
    await action(client, tokens[first], f"{MESSAGES}{follow_up['id']}/ack/", {})
    assert await unread(client, tokens[second], channel) == 0
    receipts = await client.get(f"{MESSAGES}{follow_up['id']}/get-receipts/", headers=org.staff)
    read = {r["individual-id"]: r for r in receipts.json()["read"]}
    assert set(read) == {first, second}
    assert read[first]["ack-user-time"] is not None and read[second]["ack-user-time"] is None
    # A patient's ack is only theirs.
    reply = await posted(client, tokens[second], channel, "Yes, with food.")
    await action(client, tokens[patient], f"{MESSAGES}{reply['id']}/ack/", {})
    assert await unread(client, tokens[first], channel) == 1
    assert (await channel_view(client, tokens[first], channel))["group-provider-ack"] is True


async def test_message_list_filters(client: httpx.AsyncClient, org: Org) -> None:
    c = await clinic(client, org)
    user = await client.post(
        "/v1/users/",
        json=doc(
            "users",
            {
                "username": f"alice-{uuid.uuid4().hex[:6]}",
                "primary-individual-id": c.alice,
                "email": "alice@example.com",
                "email-verified": True,
            },
        ),
        headers=org.admin,
    )
    assert user.status_code == 201, user.text
    user_id = user.json()["data"]["id"]
    one = await posted(client, c.as_alice, c.channel, "Blood pressure 140 over 90")
    two = await posted(client, c.as_provider, c.channel, "Please measure again tomorrow")
    three = await posted(client, c.as_alice, c.channel, "blood sugar is fine")
    assert one["attributes"]["user-id"] == user_id
    assert one["attributes"]["user-name"] == user.json()["data"]["attributes"]["username"]
    assert two["attributes"]["user-id"] is None

    # The user's verified email shows to staff and to Alice herself, not to Bob.
    staff_subs = {
        s["id"]: s for s in (await channel_view(client, org.staff, c.channel))["subscribers"]
    }
    assert staff_subs[c.alice]["email"] == "alice@example.com"
    assert staff_subs[c.alice]["email-verified"] is True
    own = {s["id"]: s for s in (await channel_view(client, c.as_alice, c.channel))["subscribers"]}
    assert own[c.alice]["email-verified"] is True
    seen_by_bob = {
        s["id"]: s for s in (await channel_view(client, c.as_bob, c.channel))["subscribers"]
    }
    assert seen_by_bob[c.alice]["email"] is None
    group_view = (await channel_view(client, org.staff, c.channel))["individual-group"]
    verified = {i["id"]: i["verified"] for i in group_view["individuals"]}
    assert verified[c.alice] is True and verified[c.bob] is False

    async def ids(
        params: dict[str, str] | None = None, headers: dict[str, str] = org.staff
    ) -> list[str]:
        query = {**(params or {}), "channel-id": c.channel}
        return listed_ids(await client.get(MESSAGES, headers=headers, params=query))

    assert await ids() == [three["id"], two["id"], one["id"]]
    assert await ids({"filter[text]": "BLOOD"}) == [three["id"], one["id"]]
    assert await ids({"filter[text]": "100%"}) == []
    assert await ids({"user-id": user_id}) == [three["id"], one["id"]]
    assert await ids({"sort": "seq"}) == [one["id"], two["id"], three["id"]]
    posted_two = two["attributes"]["posted-time"]
    assert await ids({"filter[cmp-posted-time]": f">={posted_two}"}) == [three["id"], two["id"]]
    window = await client.get(
        MESSAGES,
        headers=org.staff,
        params=[
            ("channel-id", c.channel),
            ("filter[cmp-posted-time]", f">={posted_two}"),
            ("filter[cmp-posted-time]", f"<={posted_two}"),
        ],
    )
    assert listed_ids(window) == [two["id"]]
    await patch_message(client, c.as_alice, one["id"], {"message": "Blood pressure 130 over 85"})
    edited_at = (await message_view(client, org.staff, one["id"]))["last-modified-time"]
    assert await ids({"filter[cmp-last-modified-time]": f">={edited_at}"}) == [one["id"]]
    assert await ids({"acknowledged": "false"}, c.as_bob) == [three["id"], two["id"], one["id"]]
    assert await ids({"acknowledged": "true"}, c.as_alice) == [three["id"], two["id"], one["id"]]
    assert await ids({"acknowledged": "false", "individual-id": c.provider}) == [three["id"]]
    await analyse_pending(client)
    with_phrases = await client.get(
        MESSAGES, headers=org.staff, params={"channel-id": c.channel, "include-phrases": "true"}
    )
    phrases = {m["id"]: m["attributes"]["phrases"] for m in with_phrases.json()["data"]}
    assert any("blood" in k["phrase"].lower() for k in phrases[three["id"]]["keywords"])
    thumbs = await client.get(
        MESSAGES, headers=org.staff, params={"channel-id": c.channel, "thumbnail": "true"}
    )
    assert all(m["attributes"]["attachments"] == [] for m in thumbs.json()["data"])

    missing = await client.get(MESSAGES, headers=org.staff)
    assert error(missing, 400)["source"]["parameter"] == "channel-id"
    no_reader = await client.get(
        MESSAGES, headers=org.staff, params={"channel-id": c.channel, "acknowledged": "true"}
    )
    assert error(no_reader, 400)["source"]["parameter"] == "acknowledged"
    bad_values = [
        ("channel-id", "nope"),
        ("acknowledged", "sometimes"),
        ("include-read-receipts", "y"),
        ("include-phrases", "y"),
        ("thumbnail", "big"),
        ("user-id", "me"),
        ("filter[text]", "x" * 256),
        ("filter[cmp-posted-time]", "yesterday"),
        ("filter[cmp-last-modified-time]", "=2024-01-01T00:00:00Z"),
        ("page[limit]", "1001"),
        ("sort", "posted-time"),
        ("filter[author]", "x"),
    ]
    for name, value in bad_values:
        params = {"channel-id": c.channel, name: value}
        response = await client.get(MESSAGES, headers=org.staff, params=params)
        assert error(response, 400)["source"]["parameter"] == name, (name, value)


@pytest.mark.parametrize("reaction", ["dislike", "like", "lol", "love", "sad", "wow"])
async def test_every_reaction_type(client: httpx.AsyncClient, org: Org, reaction: str) -> None:
    patient = await make_individual(client, org, "Pat", "R")
    channel = (await make_channel(client, org, {"individual-ids": [patient]}))["id"]
    token = await make_token(client, org, patient)
    message = await posted(client, token, channel, "ok")
    response = await action(
        client, token, f"{MESSAGES}{message['id']}/add-reaction/", {"reaction-type": reaction}
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["attributes"]["reactions"][0]["reaction-type"] == reaction


async def test_horizons_are_kept_per_subscriber(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """The stored horizon names the message it points at (the receipts rely on it)."""
    c = await clinic(client, org)
    messages = [await posted(client, c.as_alice, c.channel, f"note {i}") for i in range(3)]
    await action(client, c.as_bob, f"{MESSAGES}{messages[1]['id']}/ack/", {})
    async with app.state.database.sessionmaker() as session:
        channel = (
            await session.execute(
                unscoped(
                    select(MessagingChannel).where(MessagingChannel.id == uuid.UUID(c.channel)),
                    "test",
                )
            )
        ).scalar_one()
        subs = {
            str(s.individual_id): s
            for s in (
                await session.execute(
                    unscoped(
                        select(MessagingSubscriber).where(
                            MessagingSubscriber.channel_id == uuid.UUID(c.channel)
                        ),
                        "test",
                    )
                )
            ).scalars()
        }
    assert channel.last_seq == 3 and str(channel.last_message_id) == messages[2]["id"]
    assert subs[c.bob].ack_seq == 2 and str(subs[c.bob].ack_message_id) == messages[1]["id"]
    assert subs[c.alice].ack_seq == 3 and subs[c.provider].ack_seq == 0


async def test_channel_shows_the_callers_newest_bookmark(
    client: httpx.AsyncClient, org: Org
) -> None:
    c = await clinic(client, org)
    first = await posted(client, c.as_provider, c.channel, "Your appointment is on Monday.")
    second = await posted(client, c.as_provider, c.channel, "Bring your insurance card.")
    assert (await channel_view(client, c.as_alice, c.channel))["bookmark"] is None
    for message, multi in ((first, False), (second, True)):
        response = await client.post(
            "/v1/messaging-bookmarks/",
            json=doc(
                "messaging-bookmarks",
                {
                    "channel-id": c.channel,
                    "message-id": message["id"],
                    "allow-multi-message": multi,
                },
            ),
            headers=c.as_alice,
        )
        assert response.status_code == 201, response.text
        newest = response.json()["data"]["id"]
    view = await channel_view(client, c.as_alice, c.channel)
    assert view["bookmark"] == {"id": newest, "message-id": second["id"]}
    # Bookmarks are personal: Bob has none, and a key without individual-id sees none.
    assert (await channel_view(client, c.as_bob, c.channel))["bookmark"] is None
    assert (await channel_view(client, org.staff, c.channel))["bookmark"] is None
    assert (await channel_view(client, org.staff, c.channel, **{"individual-id": c.alice}))[
        "bookmark"
    ]["id"] == newest
