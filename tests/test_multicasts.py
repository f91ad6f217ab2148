"""Multicasts over HTTP: filters and the recipients they reach, the one-recipient routes and
their task-id, reads (counts, status, include-individual-ids/-group, filters), cancel and
resume (409 once finished), get-recipients, user-multicasts, events and the purge."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, update

from courier.config import Settings
from courier.core.tenancy import unscoped
from courier.domains.multicasts.fanout import CHUNK_JOB, PLAN_JOB
from courier.jobs import Job, run_until_idle
from courier.models.event import Event
from courier.models.job import JobState
from tests.conftest import Org, doc
from tests.factories import individual_token, make_individual_id

MULTICASTS = "/v1/multicasts/"
USER_MULTICASTS = "/v1/user-multicasts/"
REASON = "tests read across the rows they made"

TEMPLATE: dict[str, Any] = {
    "category": "announcements",
    "apn": {"title": "Clinic news", "body": "Hi {{ individual.first_name }}: {{ news }}"},
    "fcm": {"body": "{{ news }}"},
    "web": {"title": "Clinic news", "body": "{{ news }}"},
    "sms": {"body": "{{ individual.first_name }}: {{ news }}"},
    "required-data": {"news": "string"},
}
DATA = {"news": "We open at 9 on Monday."}


# --- helpers -----------------------------------------------------------------------------------


async def template(client: httpx.AsyncClient, org: Org, **attributes: Any) -> dict[str, Any]:
    values = {"name": f"news {uuid.uuid4().hex[:8]}", **TEMPLATE, **attributes}
    response = await client.post("/v1/templates/", headers=org.admin, json=doc("templates", values))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def group(client: httpx.AsyncClient, org: Org, members: list[str]) -> str:
    response = await client.post(
        "/v1/individual-groups/",
        headers=org.admin,
        json=doc("individual-groups", {"name": "Cohort", "individual-ids": members}),
    )
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


async def user(client: httpx.AsyncClient, org: Org, individual: str | None) -> str:
    values: dict[str, Any] = {"username": f"u{uuid.uuid4().hex[:8]}"}
    if individual is not None:
        values["primary-individual-id"] = individual
    response = await client.post("/v1/users/", headers=org.admin, json=doc("users", values))
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


async def send(
    client: httpx.AsyncClient, org: Org, attributes: dict[str, Any], headers: Any = None
) -> httpx.Response:
    return await client.post(
        MULTICASTS, headers=headers or org.staff, json=doc("multicasts", attributes)
    )


async def sent(client: httpx.AsyncClient, org: Org, **attributes: Any) -> dict[str, Any]:
    response = await send(client, org, attributes)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def sent_to_group(
    client: httpx.AsyncClient, org: Org, cohort: str, template_id: str
) -> dict[str, Any]:
    """A multicast of template ``template_id`` (with DATA) to the group ``cohort``."""
    return await sent(
        client,
        org,
        **{
            "filter-type": "group",
            "filter-value": {"individual-group-id": cohort},
            "template-id": template_id,
            "data": DATA,
        },
    )


async def view(client: httpx.AsyncClient, org: Org, ident: str, **params: str) -> dict[str, Any]:
    response = await client.get(f"{MULTICASTS}{ident}/", headers=org.readonly, params=params)
    assert response.status_code == 200, response.text
    attributes: dict[str, Any] = response.json()["data"]["attributes"]
    return attributes


async def recipients(
    client: httpx.AsyncClient, org: Org, ident: str, **params: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{MULTICASTS}{ident}/get-recipients/", headers=org.readonly, params=params
    )
    assert response.status_code == 200, response.text
    return [{"id": item["id"], **item["attributes"]} for item in response.json()["data"]]


async def plan(app: Any, settings: Settings) -> int:
    return await run_until_idle(app.state.database, settings, kinds=[PLAN_JOB])


async def events_of(app: Any, resource_id: str) -> list[str]:
    stmt = select(Event.type).where(Event.resource_id == uuid.UUID(resource_id)).order_by(Event.seq)
    async with app.state.database.sessionmaker() as session:
        return list((await session.execute(unscoped(stmt, REASON))).scalars())


def pointer(response: httpx.Response) -> str:
    source: dict[str, str] = response.json()["errors"][0]["source"]
    return source["pointer"]


# --- filters and the recipients they reach ----------------------------------------------------


async def test_each_filter_type_reaches_its_people(
    client: httpx.AsyncClient, org: Org, other_org: Org, app: Any, settings: Settings
) -> None:
    news = await template(client, org)
    patients = [await make_individual_id(client, org) for _ in range(3)]
    doctor = await make_individual_id(client, org, **{"account-type": "provider"})
    await make_individual_id(client, other_org)  # never reached from org
    cohort = await group(client, org, [patients[0], doctor])
    with_login = await user(client, org, patients[2])
    await user(client, org, None)  # no individual: nobody to notify

    cases = {
        "all-participants": ({}, set(patients)),
        "all-providers": ({}, {doctor}),
        "all-individuals": ({}, {*patients, doctor}),
        "group": ({"individual-group-id": cohort}, {patients[0], doctor}),
        "individuals": (
            {"individual-ids": [patients[1]], "individual-group-ids": [cohort]},
            {patients[0], patients[1], doctor},
        ),
        "users": ({"user-ids": [with_login]}, {patients[2]}),
    }
    await plan(app, settings)  # plans an earlier test left in the shared database: not ours
    made = {}
    for kind, (value, _expected) in cases.items():
        created = await sent(
            client,
            org,
            **{"filter-type": kind, "filter-value": value, "template-id": news["id"], "data": DATA},
        )
        attrs = created["attributes"]
        assert (attrs["status"], attrs["recipient-count"], attrs["filter-type"]) == (
            "queued",
            0,
            kind,
        )
        made[kind] = created["id"]
    assert await plan(app, settings) == len(cases)
    for kind, (_value, expected) in cases.items():
        shown = await view(client, org, made[kind], **{"include-individual-ids": "true"})
        assert set(shown["individual-ids"]) == expected, kind
        assert shown["recipient-count"] == len(expected)
        assert shown["pending-count"] == len(expected)
        assert shown["status"] == "sending"
        listed = await recipients(client, org, made[kind])
        assert {r["individual-id"] for r in listed} == expected
        assert {r["state"] for r in listed} == {"pending"}
        users = {r["user-id"] for r in listed}
        assert users == ({with_login} if kind == "users" else {None})
    # Without the parameter, individual-ids is not shown.
    assert (await view(client, org, made["group"]))["individual-ids"] is None


async def test_refusals(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    news = await template(client, org)
    person = await make_individual_id(client, org)
    stranger = await make_individual_id(client, other_org)
    base = {"template-id": news["id"], "data": DATA}

    missing = await send(client, org, {**base, "filter-type": "individuals", "filter-value": {}})
    assert missing.status_code == 400
    assert pointer(missing) == "/data/attributes/filter-value"
    unknown_type = await send(client, org, {**base, "filter-type": "everyone"})
    assert unknown_type.status_code == 400
    bad_value = await send(
        client, org, {**base, "filter-type": "group", "filter-value": {"individual-group-id": 3}}
    )
    assert bad_value.status_code == 400
    assert pointer(bad_value) == "/data/attributes/filter-value/individual-group-id"
    extra = await send(
        client, org, {**base, "filter-type": "all-participants", "filter-value": {"x": 1}}
    )
    assert extra.status_code == 400
    foreign = await send(
        client,
        org,
        {**base, "filter-type": "individuals", "filter-value": {"individual-ids": [stranger]}},
    )
    assert foreign.status_code == 404
    assert pointer(foreign) == "/data/attributes/filter-value/individual-ids"
    no_group = await send(
        client,
        org,
        {
            **base,
            "filter-type": "group",
            "filter-value": {"individual-group-id": str(uuid.uuid4())},
        },
    )
    assert no_group.status_code == 404
    no_user = await send(
        client, org, {**base, "filter-type": "users", "filter-value": {"user-ids": [person]}}
    )
    assert no_user.status_code == 404
    assert pointer(no_user) == "/data/attributes/filter-value/user-ids"

    everyone = {"filter-type": "all-participants"}
    no_template = await send(client, org, {**everyone, "template-id": "nope", "data": DATA})
    assert no_template.status_code == 404
    assert pointer(no_template) == "/data/attributes/template-id"
    other_template = await template(client, other_org)
    assert (
        await send(client, org, {**everyone, "template-id": other_template["id"], "data": DATA})
    ).status_code == 404
    wrong_data = await send(client, org, {**everyone, "template-id": news["id"], "data": {}})
    assert wrong_data.status_code == 422
    assert "news is missing" in wrong_data.json()["errors"][0]["detail"]
    mistyped = await send(client, org, {**everyone, "template-id": news["id"], "data": {"news": 4}})
    assert mistyped.status_code == 422
    assert "news must be a string" in mistyped.json()["errors"][0]["detail"]
    other_org_id = await send(
        client,
        org,
        {**everyone, "template-id": news["id"], "data": DATA, "organization-id": other_org.id},
    )
    assert other_org_id.status_code == 404
    readonly = await send(
        client, org, {**everyone, "template-id": news["id"], "data": DATA}, headers=org.readonly
    )
    assert readonly.status_code == 403
    # By name works as well as by id.
    by_name = await send(
        client, org, {**everyone, "template-id": news["attributes"]["name"], "data": DATA}
    )
    assert by_name.status_code == 201, by_name.text
    assert by_name.json()["data"]["attributes"]["template-id"] == news["attributes"]["name"]


async def test_list_filters_and_includes(
    client: httpx.AsyncClient, org: Org, other_org: Org, app: Any, settings: Settings
) -> None:
    news = await template(client, org)
    other = await template(client, org)
    members = [await make_individual_id(client, org) for _ in range(2)]
    cohort = await group(client, org, members)
    first = await sent_to_group(client, org, cohort, news["id"])
    second = await sent(
        client,
        org,
        **{"filter-type": "all-participants", "template-id": other["id"], "data": DATA},
    )
    await sent(
        client,
        other_org,
        **{
            "filter-type": "all-participants",
            "template-id": (await template(client, other_org))["id"],
            "data": DATA,
        },
    )

    async def listed(**params: str) -> list[str]:
        response = await client.get(MULTICASTS, headers=org.readonly, params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["data"]]

    assert await listed() == [second["id"], first["id"]]  # newest first, own organization only
    assert await listed(**{"individual-group-id": cohort}) == [first["id"]]
    assert await listed(**{"template-id": other["id"]}) == [second["id"]]
    created = first["attributes"]["created-at"]
    assert await listed(**{"filter[cmp-created-at]": f"<={created}"}) == [first["id"]]
    assert await listed(**{"filter[cmp-created-at]": f">{created}"}) == [second["id"]]
    bad = await client.get(MULTICASTS, headers=org.readonly, params={"include-individual-ids": "x"})
    assert bad.status_code == 400
    bad_filter = await client.get(MULTICASTS, headers=org.readonly, params={"filter[nope]": "1"})
    assert bad_filter.status_code == 400

    await plan(app, settings)
    shown = await view(client, org, first["id"], **{"include-individual-group": "true"})
    embedded = shown["individual-group"]
    assert embedded["individuals-count"] == 2
    assert set(embedded["individual-ids"]) == set(members)
    assert shown["individual-group-id"] == cohort
    assert (await view(client, org, first["id"]))["individual-group"] is None
    assert shown["data"] == shown["template-args"] == DATA
    foreign = await client.get(f"{MULTICASTS}{first['id']}/", headers=other_org.admin)
    assert foreign.status_code == 404


# --- the one-recipient routes and their task ------------------------------------------------


async def test_individual_and_user_multicasts_answer_a_readable_task(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    news = await template(client, org)
    person = await make_individual_id(client, org, **{"first-name": "Ada"})
    response = await client.post(
        f"/v1/individuals/{person}/multicast/",
        headers=org.staff,
        json={"template-id": news["id"], "template-data": DATA, "organization-id": org.id},
    )
    assert response.status_code == 201, response.text
    task = response.json()
    assert set(task) == {"message-data", "task-id"}
    assert task["message-data"]["status"] == "queued"
    shown = await view(client, org, task["task-id"])
    assert (shown["individual-id"], shown["first-name"], shown["status"]) == (
        person,
        "Ada",
        "queued",
    )
    await plan(app, settings)
    listed = await recipients(client, org, task["task-id"])
    assert [(r["individual-id"], r["state"]) for r in listed] == [(person, "pending")]

    # users/{id}/multicast: the user's primary individual, or one the user manages.
    login = await user(client, org, person)
    managed = await make_individual_id(client, org)
    await client.patch(
        f"/v1/individuals/{managed}/",
        headers=org.admin,
        json=doc("individuals", {"owner-id": login}, managed),
    )
    for chosen, expected in ((None, person), (managed, managed)):
        body: dict[str, Any] = {"template-id": news["id"], "data": DATA}
        if chosen is not None:
            body["individual-id"] = chosen
        answer = await client.post(f"/v1/users/{login}/multicast/", headers=org.staff, json=body)
        assert answer.status_code == 201, answer.text
        ident = answer.json()["task-id"]
        await plan(app, settings)
        shown = await view(client, org, ident)
        assert shown["user-name"] is not None
        assert shown["individual-id"] == expected
        (only,) = await recipients(client, org, ident)
        assert (only["individual-id"], only["user-id"]) == (expected, login)
    stranger = await make_individual_id(client, org)
    refused = await client.post(
        f"/v1/users/{login}/multicast/",
        headers=org.staff,
        json={"template-id": news["id"], "data": DATA, "individual-id": stranger},
    )
    assert refused.status_code == 422
    lonely = await user(client, org, None)
    nobody = await client.post(
        f"/v1/users/{lonely}/multicast/",
        headers=org.staff,
        json={"template-id": news["id"], "data": DATA},
    )
    assert nobody.status_code == 422
    bad_data = await client.post(
        f"/v1/individuals/{person}/multicast/",
        headers=org.staff,
        json={"template-id": news["id"], "template-data": {"news": []}},
    )
    assert bad_data.status_code == 422
    assert pointer(bad_data) == "/template-data"
    missing = await client.post(
        f"/v1/individuals/{person}/multicast/", headers=org.staff, json={"template-id": news["id"]}
    )
    assert missing.status_code == 400


async def test_user_multicasts_sent_and_listed_per_individual(
    client: httpx.AsyncClient, org: Org, other_org: Org, app: Any, settings: Settings
) -> None:
    news = await template(client, org)
    people = [await make_individual_id(client, org) for _ in range(3)]
    cohort = await group(client, org, people[1:])
    response = await client.post(
        USER_MULTICASTS,
        headers=org.staff,
        json={
            "individual-ids": [people[0], people[1]],
            "individual-group-ids": [cohort],
            "template-id": news["id"],
            "template-data": DATA,
        },
    )
    assert response.status_code == 201, response.text
    task = response.json()["task-id"]
    # The JSON:API form of the same body is accepted too.
    wrapped = await client.post(
        USER_MULTICASTS,
        headers=org.staff,
        json=doc(
            "user-multicasts",
            {"individual-ids": [people[2]], "template-id": news["id"], "template-data": DATA},
        ),
    )
    assert wrapped.status_code == 201, wrapped.text
    await plan(app, settings)
    assert (await view(client, org, task))["recipient-count"] == 3

    async def received(individual: str, headers: Any = None) -> list[dict[str, Any]]:
        answer = await client.get(
            USER_MULTICASTS,
            headers=headers or org.readonly,
            params={} if headers else {"individual-id": individual},
        )
        assert answer.status_code == 200, answer.text
        return [{"id": i["id"], **i["attributes"]} for i in answer.json()["data"]]

    first = await received(people[0])
    assert [(r["id"], r["template-id"], r["template-data"]) for r in first] == [
        (task, news["id"], DATA)
    ]
    assert {r["id"] for r in await received(people[2])} == {
        task,
        wrapped.json()["task-id"],
    }
    token = await individual_token(client, org, people[0])
    own = await received(people[0], {"Authorization": f"Bearer {token}"})
    assert [r["id"] for r in own] == [task]
    assert (await client.get(USER_MULTICASTS, headers=org.readonly)).status_code == 400
    foreign = await client.get(
        USER_MULTICASTS, headers=other_org.admin, params={"individual-id": people[0]}
    )
    assert foreign.status_code == 404
    none = await client.post(
        USER_MULTICASTS, headers=org.staff, json={"template-id": news["id"], "template-data": DATA}
    )
    assert none.status_code == 400


# --- cancel and resume ----------------------------------------------------------------------


async def test_cancel_skips_the_unreached_and_finished_multicasts_are_409(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    news = await template(client, org)
    for _ in range(3):
        await make_individual_id(client, org)
    queued = await sent(
        client, org, **{"filter-type": "all-participants", "template-id": news["id"], "data": DATA}
    )
    planned = await sent(
        client, org, **{"filter-type": "all-participants", "template-id": news["id"], "data": DATA}
    )
    await run_until_idle(app.state.database, settings, kinds=[PLAN_JOB])
    # One still queued (cancelled before planning: nobody is ever planned) ...
    await sent(
        client, org, **{"filter-type": "all-participants", "template-id": news["id"], "data": DATA}
    )
    for ident in (queued["id"], planned["id"]):
        response = await client.post(f"{MULTICASTS}{ident}/cancel/", headers=org.staff, json={})
        assert response.status_code == 201, response.text
        attrs = response.json()["data"]["attributes"]
        assert attrs["status"] == "cancelled"
        assert attrs["cancelled-at"] is not None
    shown = await view(client, org, planned["id"])
    assert (shown["recipient-count"], shown["skipped-count"], shown["pending-count"]) == (3, 3, 0)
    assert {(r["state"], r["reason"]) for r in await recipients(client, org, planned["id"])} == {
        ("skipped", "cancelled")
    }
    skipped = await recipients(client, org, planned["id"], **{"filter[state]": "skipped"})
    assert len(skipped) == 3
    assert await recipients(client, org, planned["id"], **{"filter[state]": "pending"}) == []
    # Its chunk jobs, run now, deliver nothing.
    await run_until_idle(app.state.database, settings, kinds=[PLAN_JOB, CHUNK_JOB])
    assert (await view(client, org, planned["id"]))["notified-count"] == 0

    for ident in (queued["id"], planned["id"]):
        again = await client.post(f"{MULTICASTS}{ident}/cancel/", headers=org.staff, json={})
        assert again.status_code == 409
        assert again.json()["errors"][0]["code"] == "multicast-cancelled"
        resumed = await client.post(f"{MULTICASTS}{ident}/resume/", headers=org.staff, json={})
        assert resumed.status_code == 409
    assert "multicasts.cancelled" in await events_of(app, planned["id"])
    assert "multicasts.created" in await events_of(app, planned["id"])
    readonly = await client.post(
        f"{MULTICASTS}{queued['id']}/cancel/", headers=org.readonly, json={}
    )
    assert readonly.status_code == 403


async def test_resume_requeues_the_jobs_that_gave_up(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    news = await template(client, org)
    await make_individual_id(client, org)
    made = await sent(
        client, org, **{"filter-type": "all-participants", "template-id": news["id"], "data": DATA}
    )
    nothing = await client.post(f"{MULTICASTS}{made['id']}/resume/", headers=org.staff, json={})
    assert nothing.status_code == 409
    assert nothing.json()["errors"][0]["code"] == "multicast-not-stalled"
    # An outage used up the plan job's attempts.
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            unscoped(update(Job).where(Job.kind == PLAN_JOB), REASON).values(
                state=JobState.FAILED.value, attempts=5
            )
        )
        await session.commit()
    assert await plan(app, settings) == 0
    response = await client.post(f"{MULTICASTS}{made['id']}/resume/", headers=org.staff, json={})
    assert response.status_code == 201, response.text
    assert await plan(app, settings) == 1
    assert (await view(client, org, made["id"]))["recipient-count"] == 1
    assert "multicasts.resumed" in await events_of(app, made["id"])


@pytest.mark.parametrize("path", ["cancel", "resume"])
async def test_actions_on_unknown_multicasts_are_404(
    client: httpx.AsyncClient, org: Org, path: str
) -> None:
    response = await client.post(f"{MULTICASTS}{uuid.uuid4()}/{path}/", headers=org.staff, json={})
    assert response.status_code == 404


# --- purge ----------------------------------------------------------------------------------


async def test_purging_an_individual_removes_them_from_multicasts(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    import courier.domains.purges.jobs  # noqa: F401  (registers the purge job)
    from courier.domains.purges.service import PURGE_JOB

    news = await template(client, org)
    people = [await make_individual_id(client, org) for _ in range(2)]
    listed = await sent(
        client,
        org,
        **{
            "filter-type": "individuals",
            "filter-value": {"individual-ids": people},
            "template-id": news["id"],
            "data": DATA,
        },
    )
    single = await client.post(
        f"/v1/individuals/{people[0]}/multicast/",
        headers=org.staff,
        json={"template-id": news["id"], "template-data": DATA},
    )
    assert single.status_code == 201, single.text
    one = single.json()["task-id"]
    await plan(app, settings)
    purge = await client.post(
        "/v1/purge-data/",
        headers=org.admin,
        json=doc("system-purges", {"entity-type": "individual", "entity-id": people[0]}),
    )
    assert purge.status_code == 201, purge.text
    await run_until_idle(app.state.database, settings, kinds=[PURGE_JOB])
    receipt = await client.get(f"/v1/purge-data/{purge.json()['data']['id']}/", headers=org.admin)
    assert receipt.json()["data"]["attributes"]["state"] == "completed"

    shown = await view(client, org, listed["id"], **{"include-individual-ids": "true"})
    assert shown["individual-ids"] == [people[1]]
    assert shown["filter-value"] == {"individual-ids": [people[1]]}
    assert shown["recipient-count"] == 2  # the counts say how many were planned
    assert [r["individual-id"] for r in await recipients(client, org, listed["id"])] == [people[1]]
    alone = await view(client, org, one)
    assert (alone["individual-id"], alone["first-name"]) == (None, None)
    assert await recipients(client, org, one) == []


# --- delivery: one notification per recipient, one push per device ------------------------


async def notifications_of(app: Any, multicast_id: str) -> list[tuple[str, list[str]]]:
    from courier.models.user_notification import UserNotification

    stmt = select(UserNotification.individual_id, UserNotification.channels).where(
        UserNotification.source == f"multicast:{multicast_id}"
    )
    async with app.state.database.sessionmaker() as session:
        rows = (await session.execute(unscoped(stmt, REASON))).all()
    return [(str(ident), list(channels)) for ident, channels in rows]


async def test_group_multicast_notifies_each_member_once_and_pushes_each_device_once(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    from tests.notify_support import make_device, make_patient, screen

    news = await template(client, org)
    patients = [await make_patient(client, org, first_name=f"P{n}") for n in range(5)]
    tokens: dict[str, list[str]] = {ind: [] for ind, _user in patients}
    for n, (individual, _user) in enumerate(patients[:4]):
        for kind in ("apn", "fcm")[: 1 + n % 2]:
            device = await make_device(client, org, individual, type=kind)
            tokens[individual].append(device["attributes"]["token"])
    members = [ind for ind, _user in patients]
    cohort = await group(client, org, members)
    made = await sent_to_group(client, org, cohort, news["id"])
    small_chunks = settings.model_copy(update={"multicast_chunk_size": 2})
    await run_until_idle(app.state.database, small_chunks)

    shown = await view(client, org, made["id"])
    assert (shown["status"], shown["completed-at"] is not None) == ("completed", True)
    assert (shown["recipient-count"], shown["notified-count"], shown["skipped-count"]) == (5, 5, 0)
    notified = await notifications_of(app, made["id"])
    assert sorted(ind for ind, _channels in notified) == sorted(members)  # once each
    listed = {r["individual-id"]: r for r in await recipients(client, org, made["id"])}
    for individual in members:
        row = listed[individual]
        assert row["state"] == "delivered"
        assert row["notification-id"] is not None
        expected = {"apn": "apn", "fcm": "fcm"}
        kinds = {expected[k] for k in ("apn", "fcm")[: len(tokens[individual])]}
        assert set(row["channels"]) >= kinds
        for token in tokens[individual]:
            phone = await screen(client, org, token)
            assert len(phone) == 1, (individual, phone)
            assert "We open at 9 on Monday." in phone[0]["body"]
    events = await events_of(app, made["id"])
    assert events[0] == "multicasts.created"
    assert "multicasts.updated" in events and events[-1] == "multicasts.completed"

    # Finished: cancel and resume are 409; running the jobs again sends nothing more.
    for action in ("cancel", "resume"):
        refused = await client.post(
            f"{MULTICASTS}{made['id']}/{action}/", headers=org.staff, json={}
        )
        assert refused.status_code == 409
        assert refused.json()["errors"][0]["code"] == "multicast-completed"
    await run_until_idle(app.state.database, settings)
    assert len(await notifications_of(app, made["id"])) == 5

    # user-multicasts shows it, delivered, to each member.
    received = await client.get(
        USER_MULTICASTS, headers=org.readonly, params={"individual-id": members[0]}
    )
    (item,) = received.json()["data"]
    assert (item["id"], item["attributes"]["state"]) == (made["id"], "delivered")
    assert item["attributes"]["notification-id"] == listed[members[0]]["notification-id"]


async def test_a_chunk_delivered_again_notifies_nobody_twice(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    """The dedupe key per recipient: even a chunk whose targets were somehow pending again
    finds each recipient's notification instead of making another."""
    from courier.models.fanout import FanoutTarget

    news = await template(client, org)
    people = [await make_individual_id(client, org) for _ in range(3)]
    made = await sent(
        client,
        org,
        **{
            "filter-type": "individuals",
            "filter-value": {"individual-ids": people},
            "template-id": news["id"],
            "data": DATA,
        },
    )
    await run_until_idle(app.state.database, settings)
    first = {
        r["individual-id"]: r["notification-id"] for r in await recipients(client, org, made["id"])
    }
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            unscoped(update(FanoutTarget), REASON).values(state="pending", outcome=None)
        )
        await session.execute(
            unscoped(update(Job).where(Job.kind == CHUNK_JOB), REASON).values(
                state=JobState.FAILED.value
            )
        )
        await session.commit()
    response = await client.post(f"{MULTICASTS}{made['id']}/resume/", headers=org.staff, json={})
    assert response.status_code == 409  # completed: the multicast is not taken up again
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            unscoped(update(Job).where(Job.kind == CHUNK_JOB), REASON).values(
                state=JobState.QUEUED.value, attempts=0
            )
        )
        await session.commit()
    await run_until_idle(app.state.database, settings)
    again = {
        r["individual-id"]: r["notification-id"] for r in await recipients(client, org, made["id"])
    }
    assert again == first
    assert len(await notifications_of(app, made["id"])) == 3


async def test_a_recipient_the_template_cannot_reach_is_skipped_with_the_reason(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    news = await template(client, org)
    person = await make_individual_id(client, org)
    made = await sent(
        client,
        org,
        **{
            "filter-type": "individuals",
            "filter-value": {"individual-ids": [person]},
            "template-id": news["id"],
            "data": DATA,
        },
    )
    # The template changed after the multicast was accepted: it now needs a key not sent.
    changed = await client.patch(
        f"/v1/templates/{news['id']}/",
        headers=org.admin,
        json=doc(
            "templates",
            {
                "required-data": {"news": "string", "room": "number"},
                "sms": {"body": "{{ news }} room {{ room }}"},
            },
            news["id"],
        ),
    )
    assert changed.status_code == 200, changed.text
    await run_until_idle(app.state.database, settings)
    (row,) = await recipients(client, org, made["id"])
    assert row["state"] == "skipped"
    assert row["reason"].startswith("missing-data")
    shown = await view(client, org, made["id"])
    assert (shown["status"], shown["skipped-count"], shown["notified-count"]) == ("completed", 1, 0)


MULTICAST_TABLES = re.compile(
    r"\b(user_notifications|deliveries|delivery_events|fanout_targets|events|audit_events"
    r"|sandbox_records)\b"
)


async def test_a_chunk_and_its_pushes_take_as_many_statements_for_six_as_for_two(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    """Each table a multicast writes is written once per chunk (and once per push batch),
    whatever the chunk's size: a multicast to six people with a device each runs as many
    statements on those tables as one to two, and on PostgreSQL none of them is an
    executemany (one INSERT or UPDATE sent per row)."""
    from tests.notify_support import make_device, make_patient, screen

    news = await template(client, org)
    patients = [await make_patient(client, org, first_name=f"P{n}") for n in range(8)]
    tokens = []
    for individual, _user in patients:
        device = await make_device(client, org, individual, type="apn")
        tokens.append(device["attributes"]["token"])
    engine = app.state.database.engine.sync_engine
    one_chunk = settings.model_copy(update={"multicast_chunk_size": 10})

    async def statements_of(members: list[str]) -> list[tuple[str, bool]]:
        cohort = await group(client, org, members)
        await sent_to_group(client, org, cohort, news["id"])
        ran: list[tuple[str, bool]] = []

        def record(*args: Any) -> None:
            statement, parameters, many = str(args[2]), args[3], bool(args[5])
            if MULTICAST_TABLES.search(statement):
                ran.append((statement, many and len(parameters) > 1))

        event.listen(engine, "before_cursor_execute", record)
        try:
            await run_until_idle(app.state.database, one_chunk)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return ran

    two = await statements_of([ind for ind, _user in patients[:2]])
    six = await statements_of([ind for ind, _user in patients[2:]])
    assert len(six) == len(two), (two, six)
    if engine.dialect.name == "postgresql":
        assert [s for s, many in six if many] == []
    for token in tokens:
        assert len(await screen(client, org, token)) == 1
