"""Announcers over HTTP: CRUD, filters, bad args (400/422), tenancy; and the evaluator job:
an event reaches each recipient once per rule even when the job runs again, inactive and
non-matching rules send nothing, another organization's events never trigger a rule."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

import courier.domains.announcers.jobs as announcer_jobs
from courier.config import Settings
from courier.core.db import commit
from courier.core.tenancy import scoped
from courier.domains.announcers.purge import purge_announcers
from courier.domains.announcers.service import EVALUATE_KIND
from courier.jobs import enqueue, run_until_idle
from courier.models.announcer import AnnouncerFiring
from courier.models.event import Event
from courier.models.job import Job
from courier.models.user_notification import UserNotification
from tests.conftest import Org, doc
from tests.factories import make_individual_id

ANNOUNCERS = "/v1/announcers/"


async def make_template(client: httpx.AsyncClient, org: Org, **attributes: Any) -> dict[str, Any]:
    values = {
        "name": f"t {uuid.uuid4().hex[:8]}",
        "sms": {"body": "Hello {{ individual.first_name }}"},
        **attributes,
    }
    response = await client.post("/v1/templates/", headers=org.admin, json=doc("templates", values))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def create(
    client: httpx.AsyncClient, org: Org, headers: dict[str, str] | None = None, **attributes: Any
) -> httpx.Response:
    values = {"name": f"a {uuid.uuid4().hex[:8]}", **attributes}
    return await client.post(
        ANNOUNCERS, headers=headers or org.admin, json=doc("announcers", values)
    )


async def created(client: httpx.AsyncClient, org: Org, **attributes: Any) -> dict[str, Any]:
    response = await create(client, org, **attributes)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def make_group(client: httpx.AsyncClient, org: Org, members: list[str]) -> str:
    response = await client.post(
        "/v1/individual-groups/",
        headers=org.admin,
        json=doc("individual-groups", {"name": "Team", "individual-ids": members}),
    )
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


def database(client: httpx.AsyncClient) -> Any:
    return client._transport.app.state.database  # type: ignore[attr-defined]


async def event_types(client: httpx.AsyncClient, org: Org, resource_id: str) -> list[str]:
    async with database(client).sessionmaker() as session:
        stmt = scoped(
            select(Event.type).where(Event.resource_id == uuid.UUID(resource_id)),
            Event,
            uuid.UUID(org.id),
        ).order_by(Event.seq)
        return list((await session.execute(stmt)).scalars())


def problems(response: httpx.Response) -> list[tuple[str, str]]:
    return [
        (item.get("source", {}).get("pointer", ""), item["code"])
        for item in response.json()["errors"]
    ]


# --- the resource ------------------------------------------------------------------------------


async def test_create_list_get_patch(client: httpx.AsyncClient, org: Org) -> None:
    template = await make_template(client, org)
    patient = await make_individual_id(client, org)
    announcer = await created(
        client,
        org,
        name="welcome",
        event="individual-created",
        args={
            # By name: stored as the template's id.
            "template-id": template["attributes"]["name"],
            "recipients": ["subject"],
            "individual-ids": [patient],
        },
    )
    attrs = announcer["attributes"]
    assert attrs["event"] == "individual-created"
    assert attrs["type"] == "notification"
    assert attrs["active"] is True
    assert attrs["args"]["template-id"] == template["id"]
    assert attrs["args"]["recipients"] == ["subject"]
    assert attrs["args"]["individual-ids"] == [patient]
    assert attrs["args"]["data"] == {}
    assert attrs["organization-id"] == org.id
    assert attrs["created-by"] == org.admin_key_id
    assert attrs["last-modified-by"] == org.admin_key_id

    other = await created(
        client,
        org,
        name="other",
        event="message-posted",
        args={"template-id": template["id"], "recipients": ["channel-subscribers"]},
    )
    listed = await client.get(ANNOUNCERS, headers=org.readonly)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["data"]] == [announcer["id"], other["id"]]
    by_name = await client.get(ANNOUNCERS, headers=org.staff, params={"filter[name]": "other"})
    assert [item["id"] for item in by_name.json()["data"]] == [other["id"]]
    by_org = await client.get(ANNOUNCERS, headers=org.staff, params={"organization-id": org.id})
    assert len(by_org.json()["data"]) == 2
    sorted_by_name = await client.get(ANNOUNCERS, headers=org.staff, params={"sort": "-name"})
    assert [i["attributes"]["name"] for i in sorted_by_name.json()["data"]] == ["welcome", "other"]

    path = f"{ANNOUNCERS}{announcer['id']}/"
    got = await client.get(path, headers=org.readonly)
    assert got.status_code == 200
    assert got.json()["data"]["attributes"] == attrs

    patched = await client.patch(
        path,
        headers=org.admin,
        json=doc("announcers", {"name": "welcome v2", "active": False}, announcer["id"]),
    )
    assert patched.status_code == 200, patched.text
    after = patched.json()["data"]["attributes"]
    assert after["name"] == "welcome v2"
    assert after["active"] is False
    assert after["args"] == attrs["args"]  # untouched
    assert after["last-modified-at"] >= attrs["last-modified-at"]

    # A new event checks the stored args against it; new args replace the old ones.
    moved = await client.patch(
        path,
        headers=org.admin,
        json=doc(
            "announcers",
            {
                "event": "individual-shared",
                "args": {"template-id": template["id"], "recipients": ["group-members"]},
            },
            announcer["id"],
        ),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["data"]["attributes"]["event"] == "individual-shared"
    assert moved.json()["data"]["attributes"]["args"]["individual-ids"] == []

    # The changes are events of their own (announcers.created, announcers.updated).
    types = await event_types(client, org, announcer["id"])
    assert types == ["announcers.created", "announcers.updated", "announcers.updated"]


async def test_permissions_and_tenancy(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    template = await make_template(client, org)
    args = {"template-id": template["id"], "recipients": ["subject"]}
    refused = await create(client, org, headers=org.staff, event="individual-created", args=args)
    assert refused.status_code == 403
    announcer = await created(client, org, event="individual-created", args=args)
    path = f"{ANNOUNCERS}{announcer['id']}/"
    assert (await client.get(path, headers=other_org.admin)).status_code == 404
    patch = doc("announcers", {"name": "x"}, announcer["id"])
    assert (await client.patch(path, headers=other_org.admin, json=patch)).status_code == 404
    assert (await client.patch(path, headers=org.staff, json=patch)).status_code == 403
    assert (await client.get(ANNOUNCERS, headers=other_org.admin)).json()["data"] == []
    # Another organization's template is no template at all.
    foreign = await create(client, other_org, event="individual-created", args=args)
    assert foreign.status_code == 422
    assert problems(foreign) == [("/data/attributes/args/template-id", "unknown-template")]
    # organization-id in a body: the caller's own, else 404.
    wrong_org = await create(
        client, org, event="individual-created", args=args, **{"organization-id": other_org.id}
    )
    assert wrong_org.status_code == 404
    own_org = await create(
        client, org, event="individual-created", args=args, **{"organization-id": org.id}
    )
    assert own_org.status_code == 201


async def test_malformed_documents_are_400(client: httpx.AsyncClient, org: Org) -> None:
    template = await make_template(client, org)
    good = {"template-id": template["id"], "recipients": ["subject"]}
    cases: list[dict[str, Any]] = [
        {"event": "appointment-booked", "args": good},  # not in the catalogue (yet)
        {"event": "individual-created", "type": "sms", "args": good},
        {"event": "individual-created"},  # args missing
        {"event": "individual-created", "args": {**good, "recipients": ["everyone"]}},
        {"event": "individual-created", "args": {**good, "extra": 1}},
        {"event": "individual-created", "args": {**good, "individual-ids": ["not-a-uuid"]}},
        {"event": "individual-created", "args": {**good, "template_id": template["id"]}},
        {"event": "individual-created", "args": {**good, "filter": {"channel": "x"}}},
        {"event": "individual-created", "args": {**good, "template-id": ""}},
        {"event": "individual-created", "args": {**good, "data": []}},
        {"event": "individual-created", "args": good, "name": ""},
        {"event": "individual-created", "args": "template"},
    ]
    for attributes in cases:
        response = await create(client, org, **attributes)
        assert response.status_code == 400, (attributes, response.text)
        assert response.json()["errors"][0]["status"] == "400"
    announcer = await created(client, org, event="individual-created", args=good)
    path = f"{ANNOUNCERS}{announcer['id']}/"
    for attributes in ({"name": None}, {"args": None}, {"active": "maybe"}, {"event": "x"}):
        response = await client.patch(
            path, headers=org.admin, json=doc("announcers", attributes, announcer["id"])
        )
        assert response.status_code == 400, (attributes, response.text)


async def test_impossible_args_are_422(client: httpx.AsyncClient, org: Org) -> None:
    template = await make_template(
        client,
        org,
        sms={"body": "{{ clinician }} at {{ visit }}"},
        **{"required-data": {"clinician": "string", "visit": "date"}},
    )
    nobody = str(uuid.uuid4())
    response = await create(
        client,
        org,
        event="individual-created",
        args={
            "template-id": "no such template",
            "recipients": ["group-members"],  # individual-created has no group
            "individual-ids": [nobody],
            "user-ids": [nobody],
            "filter": {"channel-id": nobody},
        },
    )
    assert response.status_code == 422, response.text
    assert problems(response) == [
        ("/data/attributes/args/template-id", "unknown-template"),
        ("/data/attributes/args/recipients", "recipient-not-offered"),
        ("/data/attributes/args/individual-ids", "unknown-individual"),
        ("/data/attributes/args/user-ids", "unknown-user"),
        ("/data/attributes/args/filter/channel-id", "filter-not-offered"),
    ]
    body = response.json()
    assert body["statusCode"] == 422 and isinstance(body["message"], list)

    data_wrong = await create(
        client,
        org,
        event="message-posted",
        args={
            "template-id": template["id"],
            "data": {"clinician": 4},
            "recipients": ["channel-subscribers"],
            "filter": {"individual-group-id": nobody, "channel-id": nobody},
        },
    )
    assert data_wrong.status_code == 422
    codes = problems(data_wrong)
    assert codes.count(("/data/attributes/args/data", "invalid-data")) == 2  # mistyped, missing
    assert ("/data/attributes/args/filter/individual-group-id", "unknown-individual-group") in codes
    assert ("/data/attributes/args/filter/channel-id", "unknown-channel") in codes

    no_one = await create(
        client, org, event="individual-shared", args={"template-id": template["id"]}
    )
    assert no_one.status_code == 422
    assert problems(no_one)[-1] == ("/data/attributes/args/recipients", "no-recipients")

    fine = await created(
        client,
        org,
        event="individual-shared",
        args={
            "template-id": template["id"],
            "data": {"clinician": "Dr. Oz", "visit": "2026-03-05T14:30:00Z"},
            "recipients": ["subject", "group-leaders"],
        },
    )
    # Changing only the event checks the stored args against it: group-leaders is not offered
    # by individual-created.
    moved = await client.patch(
        f"{ANNOUNCERS}{fine['id']}/",
        headers=org.admin,
        json=doc("announcers", {"event": "individual-created"}, fine["id"]),
    )
    assert moved.status_code == 422
    assert problems(moved) == [("/data/attributes/args/recipients", "recipient-not-offered")]


@pytest.mark.parametrize("limit", ["0", "1001", "x"])
async def test_bad_list_parameters(client: httpx.AsyncClient, org: Org, limit: str) -> None:
    response = await client.get(ANNOUNCERS, headers=org.admin, params={"page[limit]": limit})
    assert response.status_code == 400
    unknown = await client.get(ANNOUNCERS, headers=org.admin, params={"filter[event]": "x"})
    assert unknown.status_code == 400


# --- the evaluator -----------------------------------------------------------------------------


async def evaluate_all(client: httpx.AsyncClient, settings: Settings, horizon: float = 0) -> int:
    return await run_until_idle(
        database(client), settings, kinds=[EVALUATE_KIND], horizon=horizon, give_up_after=60
    )


async def notified(client: httpx.AsyncClient, org: Org, announcer_id: str) -> list[str]:
    """The individuals the announcer's notifications went to, sorted (one entry each)."""
    async with database(client).sessionmaker() as session:
        stmt = scoped(
            select(UserNotification.individual_id).where(
                UserNotification.source.like(f"announcer:{announcer_id}:%")
            ),
            UserNotification,
            uuid.UUID(org.id),
        )
        return sorted(str(i) for i in (await session.execute(stmt)).scalars())


async def firings(client: httpx.AsyncClient, org: Org, announcer_id: str) -> list[AnnouncerFiring]:
    async with database(client).sessionmaker() as session:
        stmt = scoped(
            select(AnnouncerFiring).where(AnnouncerFiring.announcer_id == uuid.UUID(announcer_id)),
            AnnouncerFiring,
            uuid.UUID(org.id),
        )
        return list((await session.execute(stmt)).scalars())


async def reevaluate_everything(client: httpx.AsyncClient, org: Org) -> None:
    """A second evaluation of every event of the organization (as an overlapping range or a
    duplicated job would be)."""
    async with database(client).sessionmaker() as session:
        stmt = scoped(select(Event.seq), Event, uuid.UUID(org.id))
        seqs = list((await session.execute(stmt)).scalars())
        await enqueue(
            session,
            EVALUATE_KIND,
            {"from_seq": min(seqs), "to_seq": max(seqs)},
            organization_id=uuid.UUID(org.id),
        )
        await commit(session)


async def test_individual_shared_reaches_each_recipient_once(
    client: httpx.AsyncClient, org: Org, settings: Settings
) -> None:
    template = await make_template(client, org)
    lead = await make_individual_id(client, org)
    first = await make_individual_id(client, org)
    second = await make_individual_id(client, org)
    watcher = await make_individual_id(client, org)
    # The group exists before the rules, so its creation triggers nothing.
    other_group = await make_group(client, org, [watcher])
    group = await make_group(client, org, [lead])
    await client.patch(
        f"/v1/individual-groups/{group}/",
        headers=org.admin,
        json=doc("individual-groups", {"leader-ids": [lead]}, group),
    )
    args = {
        "template-id": template["id"],
        "recipients": ["subject", "group-leaders"],
        "individual-ids": [watcher],
        "filter": {"individual-group-id": group},
    }
    rule = await created(client, org, event="individual-shared", args=args)
    inactive = await created(client, org, event="individual-shared", args=args, active=False)
    elsewhere = await created(
        client,
        org,
        event="individual-shared",
        args={**args, "filter": {"individual-group-id": other_group}},
    )
    # Shared twice: one event with one individual, one with another (and a no-op patch).
    for members in ([lead, first], [lead, first], [lead, first, second]):
        response = await client.patch(
            f"/v1/individual-groups/{group}/",
            headers=org.admin,
            json=doc("individual-groups", {"individual-ids": members}, group),
        )
        assert response.status_code == 200, response.text
    await evaluate_all(client, settings)

    # Each event: its subject, the leader, the named watcher; each once per event.
    expected = sorted([first, lead, watcher, second, lead, watcher])
    assert await notified(client, org, rule["id"]) == expected
    assert await notified(client, org, inactive["id"]) == []
    assert await notified(client, org, elsewhere["id"]) == []
    fired = await firings(client, org, rule["id"])
    assert sorted(f.recipients for f in fired) == [3, 3]
    assert all(f.notified == 3 and f.not_sent == 0 for f in fired)

    # Evaluated again (a duplicated job, an overlapping range): nothing more is sent.
    await reevaluate_everything(client, org)
    assert await evaluate_all(client, settings) >= 1
    assert await notified(client, org, rule["id"]) == expected
    assert len(await firings(client, org, rule["id"])) == 2

    # Activated later, the inactive rule does not send for what happened while it was off...
    await client.patch(
        f"{ANNOUNCERS}{inactive['id']}/",
        headers=org.admin,
        json=doc("announcers", {"active": True}, inactive["id"]),
    )
    await reevaluate_everything(client, org)
    await evaluate_all(client, settings)
    assert await notified(client, org, inactive["id"]) == []
    # ... until the next share.
    third = await make_individual_id(client, org)
    await client.patch(
        f"/v1/individual-groups/{group}/",
        headers=org.admin,
        json=doc("individual-groups", {"individual-ids": [lead, first, second, third]}, group),
    )
    await evaluate_all(client, settings)
    assert await notified(client, org, inactive["id"]) == sorted([third, lead, watcher])
    assert len(await notified(client, org, rule["id"])) == 9


async def test_a_failed_evaluation_is_retried_without_duplicates(
    client: httpx.AsyncClient, org: Org, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = await make_template(client, org)
    rule = await created(
        client,
        org,
        event="individual-created",
        args={"template-id": template["id"], "recipients": ["subject"]},
    )
    real = announcer_jobs.notify_many
    calls = 0

    async def dies_after_sending_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        result = await real(*args, **kwargs)
        if calls == 1:
            raise RuntimeError("the worker died after writing the notifications")
        return result

    monkeypatch.setattr(announcer_jobs, "notify_many", dies_after_sending_once)
    patients = [await make_individual_id(client, org) for _ in range(2)]
    fast = settings.model_copy(update={"job_backoff_base_seconds": 0.01})
    await evaluate_all(client, fast, horizon=5)
    assert calls >= 3  # the first attempt failed and rolled back; the retry sent both
    assert await notified(client, org, rule["id"]) == sorted(patients)
    await reevaluate_everything(client, org)
    await evaluate_all(client, fast)
    assert await notified(client, org, rule["id"]) == sorted(patients)


async def test_message_posted_filters_and_channel_subscribers(
    client: httpx.AsyncClient, org: Org, settings: Settings
) -> None:
    template = await make_template(client, org)
    author, reader, nurse = [await make_individual_id(client, org) for _ in range(3)]
    user = await client.post(
        "/v1/users/",
        headers=org.admin,
        json=doc("users", {"username": f"u{uuid.uuid4().hex[:8]}", "primary-individual-id": nurse}),
    )
    assert user.status_code == 201, user.text
    user_id = user.json()["data"]["id"]

    async def channel(members: list[str]) -> str:
        response = await client.post(
            "/v1/messaging-channels/",
            headers=org.staff,
            json=doc("messaging-channels", {"individual-ids": members}),
        )
        assert response.status_code == 201, response.text
        ident: str = response.json()["data"]["id"]
        return ident

    watched = await channel([author, reader])
    unwatched = await channel([author, reader])
    rule = await created(
        client,
        org,
        event="message-posted",
        args={
            "template-id": template["id"],
            "recipients": ["channel-subscribers"],
            "user-ids": [user_id],
            "filter": {"channel-id": watched},
        },
    )

    async def post(channel_id: str, **extra: Any) -> httpx.Response:
        attributes = {"channel-id": channel_id, "individual-id": author, "message": "Hi", **extra}
        return await client.post(
            "/v1/messaging-messages/",
            headers=org.staff,
            json=doc("messaging-messages", attributes),
        )

    assert (await post(unwatched)).status_code == 201
    draft = await post(watched, draft=True)
    assert draft.status_code == 201, draft.text
    await evaluate_all(client, settings)
    assert await notified(client, org, rule["id"]) == []  # a draft, another channel

    assert (await post(watched)).status_code == 201
    await evaluate_all(client, settings)
    # The channel's subscribers but the author, and the named user's individual.
    assert await notified(client, org, rule["id"]) == sorted([reader, nurse])
    async with database(client).sessionmaker() as session:
        stmt = scoped(
            select(UserNotification.individual_id, UserNotification.user_id).where(
                UserNotification.source.like(f"announcer:{rule['id']}:%")
            ),
            UserNotification,
            uuid.UUID(org.id),
        )
        users = {str(i): str(u) if u else None for i, u in (await session.execute(stmt)).all()}
    assert users[nurse] == user_id

    # The draft, once published, is a posted message.
    published = await client.patch(
        f"/v1/messaging-messages/{draft.json()['data']['id']}/",
        headers=org.staff,
        json=doc(
            "messaging-messages",
            {"draft": False, "individual-id": author},
            draft.json()["data"]["id"],
        ),
    )
    assert published.status_code == 200, published.text
    await evaluate_all(client, settings)
    assert len(await notified(client, org, rule["id"])) == 4


async def test_other_organizations_events_never_trigger(
    client: httpx.AsyncClient, org: Org, other_org: Org, settings: Settings
) -> None:
    template = await make_template(client, org)
    rule = await created(
        client,
        org,
        event="individual-created",
        args={"template-id": template["id"], "recipients": ["subject"]},
    )
    for _ in range(2):
        await make_individual_id(client, other_org)
    await evaluate_all(client, settings)
    assert await notified(client, org, rule["id"]) == []
    assert await firings(client, org, rule["id"]) == []
    own = await make_individual_id(client, org)
    await evaluate_all(client, settings)
    assert await notified(client, org, rule["id"]) == [own]


async def test_purge_forgets_a_named_individual(client: httpx.AsyncClient, org: Org) -> None:
    template = await make_template(client, org)
    kept, purged = [await make_individual_id(client, org) for _ in range(2)]
    rule = await created(
        client,
        org,
        event="individual-created",
        args={"template-id": template["id"], "individual-ids": [kept, purged]},
    )
    async with database(client).sessionmaker() as session:
        counts = await purge_announcers(session, uuid.UUID(org.id), uuid.UUID(purged), None)
        await commit(session)
    assert counts == {"announcers.individual-ids": 1}
    got = await client.get(f"{ANNOUNCERS}{rule['id']}/", headers=org.admin)
    assert got.json()["data"]["attributes"]["args"]["individual-ids"] == [kept]
    async with database(client).sessionmaker() as session:
        again = await purge_announcers(session, uuid.UUID(org.id), uuid.UUID(purged), None)
    assert again == {"announcers.individual-ids": 0}


async def test_user_created_notifies_the_user_as_itself(
    client: httpx.AsyncClient, org: Org, settings: Settings
) -> None:
    template = await make_template(client, org)
    rule = await created(
        client,
        org,
        event="user-created",
        args={"template-id": template["id"], "recipients": ["subject"]},
    )
    patient = await make_individual_id(client, org)
    with_individual = await client.post(
        "/v1/users/",
        headers=org.admin,
        json=doc(
            "users", {"username": f"u{uuid.uuid4().hex[:8]}", "primary-individual-id": patient}
        ),
    )
    assert with_individual.status_code == 201, with_individual.text
    # A user without a primary individual has no one to notify.
    alone = await client.post(
        "/v1/users/", headers=org.admin, json=doc("users", {"username": f"u{uuid.uuid4().hex}"})
    )
    assert alone.status_code == 201, alone.text
    await evaluate_all(client, settings)
    assert await notified(client, org, rule["id"]) == [patient]
    fired = sorted(await firings(client, org, rule["id"]), key=lambda f: f.recipients)
    assert [(f.recipients, f.notified) for f in fired] == [(0, 0), (1, 1)]
    async with database(client).sessionmaker() as session:
        stmt = scoped(
            select(UserNotification.user_id).where(
                UserNotification.source.like(f"announcer:{rule['id']}:%")
            ),
            UserNotification,
            uuid.UUID(org.id),
        )
        assert [str(u) for u in (await session.execute(stmt)).scalars()] == [
            with_individual.json()["data"]["id"]
        ]


async def test_a_webhook_and_an_announcer_both_act_on_one_event(
    client: httpx.AsyncClient, org: Org, settings: Settings
) -> None:
    """Both consumers' interests are asked in one statement (a UNION): each still gets its job,
    and a webhook for other event types adds no fan-out."""
    template = await make_template(client, org)
    lead = await make_individual_id(client, org)
    group = await make_group(client, org, [lead])
    args = {"template-id": template["id"], "recipients": ["subject"]}
    rule = await created(client, org, event="individual-shared", args=args)
    for types in (["individual-groups.*"], ["appointments.created"]):
        hook = await client.post(
            "/v1/webhooks/",
            headers=org.admin,
            json=doc("webhooks", {"url": "http://127.0.0.1:9/hooks", "event-types": types}),
        )
        assert hook.status_code == 201, hook.text
    newcomer = await make_individual_id(client, org)
    shared = await client.patch(
        f"/v1/individual-groups/{group}/",
        headers=org.admin,
        json=doc("individual-groups", {"individual-ids": [lead, newcomer]}, group),
    )
    assert shared.status_code == 200, shared.text

    async with database(client).sessionmaker() as session:
        kinds = (
            await session.execute(
                scoped(
                    select(Job.kind).where(
                        Job.kind.in_(["webhooks.fanout", "announcers.evaluate"]),
                        Job.state == "queued",
                    ),
                    Job,
                    uuid.UUID(org.id),
                )
            )
        ).scalars()
        queued = sorted(kinds)
    assert queued == ["announcers.evaluate", "webhooks.fanout"], queued
    await evaluate_all(client, settings)
    assert await notified(client, org, rule["id"]) == [newcomer]
