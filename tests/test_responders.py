"""Auto-responders: the calendar (pure, across daylight-saving changes), the resource over
HTTP, and replies to participants' posts (once per quiet period, never to providers)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

import courier.domains.messaging_responders.jobs  # noqa: F401  (registers the reply job)
from courier.core.tenancy import unscoped
from courier.domains.messaging_responders.calendar import (
    Rule,
    Schedule,
    is_active,
    parse_wall_clock,
)
from courier.domains.messaging_responders.service import REPLY_JOB
from courier.jobs import Job, run_until_idle
from courier.models.messaging_responder import MessagingResponderReply
from tests.conftest import Org, doc
from tests.factories import individual_token, make_individual_id

RESPONDERS = "/v1/messaging-responders/"
CHANNELS = "/v1/messaging-channels/"
MESSAGES = "/v1/messaging-messages/"
NEW_YORK = "America/New_York"
REASON = "tests read the jobs and rows they caused"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def schedule(*rules: tuple[str, str, str], zone: str = NEW_YORK, **window: Any) -> Schedule:
    return Schedule(
        tuple(
            Rule(day, parse_wall_clock(start), parse_wall_clock(end, end=True))
            for day, start, end in rules
        ),
        zone,
        **window,
    )


# --- the calendar (pure) -------------------------------------------------------------------------


def test_day_rules_and_hours_in_the_responders_zone() -> None:
    office = schedule(("weekdays", "09:00", "17:00"))
    # Wednesday 2024-01-17 in New York (EST, UTC-5).
    assert not is_active(office, utc("2024-01-17T13:59:59"))  # 08:59:59 local
    assert is_active(office, utc("2024-01-17T14:00:00"))  # 09:00
    assert is_active(office, utc("2024-01-17T21:59:00"))  # 16:59
    assert not is_active(office, utc("2024-01-17T22:00:00"))  # 17:00: the end is excluded
    assert not is_active(office, utc("2024-01-20T15:00:00"))  # Saturday 10:00
    # The same instant read in another zone: Tokyo's Thursday morning.
    assert not is_active(
        schedule(("weekdays", "09:00", "17:00"), zone="Asia/Tokyo"), utc("2024-01-17T14:00:00")
    )
    assert is_active(
        schedule(("thursday", "08:00", "09:00"), zone="Asia/Tokyo"), utc("2024-01-17T23:30:00")
    )
    weekend = schedule(("weekends", "00:00", "00:00"))  # start == end: the whole day
    assert is_active(weekend, utc("2024-01-20T05:00:00"))  # Saturday 00:00 local
    assert is_active(weekend, utc("2024-01-22T04:59:59"))  # Sunday 23:59:59 local
    assert not is_active(weekend, utc("2024-01-22T05:00:00"))  # Monday 00:00
    monday = schedule(("monday", "12:00", "24:00"))
    assert is_active(monday, utc("2024-01-23T04:59:00"))  # Monday 23:59
    assert not is_active(monday, utc("2024-01-23T05:00:00"))  # Tuesday 00:00
    assert not is_active(monday, utc("2024-01-22T16:59:00"))  # Monday 11:59


def test_overnight_spans_belong_to_the_day_they_start() -> None:
    nights = schedule(("weekdays", "18:00", "08:00"))
    assert is_active(nights, utc("2024-01-19T23:30:00"))  # Friday 18:30
    assert is_active(nights, utc("2024-01-20T12:59:00"))  # Saturday 07:59: Friday's night
    assert not is_active(nights, utc("2024-01-20T13:00:00"))  # Saturday 08:00
    assert not is_active(nights, utc("2024-01-20T23:30:00"))  # Saturday 18:30
    assert not is_active(nights, utc("2024-01-22T12:00:00"))  # Monday 07:00: Sunday's night
    assert is_active(nights, utc("2024-01-23T12:00:00"))  # Tuesday 07:00: Monday's night
    assert not is_active(nights, utc("2024-01-22T20:00:00"))  # Monday 15:00


def test_daylight_saving_changes_in_new_york() -> None:
    """2024-03-10 02:00 EST jumps to 03:00 EDT; 2024-11-03 02:00 EDT falls back to 01:00 EST.
    The rules follow the clinic's clocks: the same UTC instant is inside a span on one side
    of a change and outside it on the other."""
    nights = schedule(("everyday", "18:00", "08:00"))
    # A week before the spring change, 12:30 UTC is 07:30 EST: still night.
    assert is_active(nights, utc("2024-03-03T12:30:00"))
    # On the day of the change, 12:30 UTC is 08:30 EDT: morning.
    assert not is_active(nights, utc("2024-03-10T12:30:00"))
    assert is_active(nights, utc("2024-03-10T11:59:00"))  # 07:59 EDT
    assert not is_active(nights, utc("2024-03-10T12:00:00"))  # 08:00 EDT
    assert is_active(nights, utc("2024-03-10T06:59:00"))  # 01:59 EST, just before the jump
    assert is_active(nights, utc("2024-03-10T07:00:00"))  # 03:00 EDT, just after
    # The evening start follows the clocks too: 18:00 EDT is 22:00 UTC.
    assert not is_active(nights, utc("2024-03-10T21:59:00"))
    assert is_active(nights, utc("2024-03-10T22:00:00"))

    # A span starting at a wall time that does not exist that day (02:30) starts at the jump.
    early = schedule(("everyday", "02:30", "04:00"))
    assert not is_active(early, utc("2024-03-10T06:59:59"))  # 01:59:59 EST
    assert is_active(early, utc("2024-03-10T07:00:00"))  # 03:00 EDT
    assert not is_active(early, utc("2024-03-10T08:00:00"))  # 04:00 EDT

    # Fall back: 01:30 happens twice (EDT, then EST); both are inside 01:00 to 02:00.
    repeated = schedule(("sunday", "01:00", "02:00"))
    assert is_active(repeated, utc("2024-11-03T05:30:00"))  # 01:30 EDT
    assert is_active(repeated, utc("2024-11-03T06:30:00"))  # 01:30 EST
    assert not is_active(repeated, utc("2024-11-03T07:00:00"))  # 02:00 EST
    office = schedule(("everyday", "09:00", "17:00"))
    assert is_active(office, utc("2024-11-02T13:00:00"))  # Saturday 09:00 EDT
    assert not is_active(office, utc("2024-11-03T13:30:00"))  # Sunday 08:30 EST
    assert is_active(office, utc("2024-11-03T14:00:00"))  # Sunday 09:00 EST
    assert is_active(nights, utc("2024-11-03T12:30:00"))  # 07:30 EST, night again
    assert not is_active(nights, utc("2024-10-27T12:30:00"))  # a week before: 08:30 EDT


def test_start_and_end_bound_the_whole_schedule() -> None:
    always = schedule(
        ("everyday", "00:00", "00:00"),
        start_at=utc("2024-05-01T00:00:00"),
        end_at=utc("2024-05-02T00:00:00"),
    )
    assert not is_active(always, utc("2024-04-30T23:59:59"))
    assert is_active(always, utc("2024-05-01T00:00:00"))
    assert not is_active(always, utc("2024-05-02T00:00:00"))
    with pytest.raises(ValueError):
        is_active(always, datetime(2024, 5, 1, 12))  # a naive instant is refused


def test_wall_clock_times() -> None:
    assert parse_wall_clock("08:05") == time(8, 5)
    assert parse_wall_clock("23:59:30") == time(23, 59, 30)
    assert parse_wall_clock("24:00", end=True) == time(0, 0)
    for bad in ("14:15:22Z", "14:15+02:00", "24:00", "7:00", "12:60", "noon"):
        with pytest.raises(ValueError):
            parse_wall_clock(bad)
    with pytest.raises(ValueError):
        Rule("someday", time(1), time(2))


# --- the resource --------------------------------------------------------------------------------


async def make_team(client: httpx.AsyncClient, org: Org) -> dict[str, str]:
    """A care team: a provider leading it, another provider, two patients; its channel."""
    lead = await make_individual_id(client, org, **{"account-type": "provider"})
    nurse = await make_individual_id(client, org, **{"account-type": "provider"})
    patient = await make_individual_id(client, org, locale="es-MX")
    other = await make_individual_id(client, org)
    group = await client.post(
        "/v1/individual-groups/",
        headers=org.admin,
        json=doc(
            "individual-groups",
            {
                "name": "Cardiology",
                "individual-ids": [lead, nurse, patient, other],
                "leader-ids": [lead],
            },
        ),
    )
    assert group.status_code == 201, group.text
    channel = await client.post(
        CHANNELS,
        headers=org.staff,
        json=doc("messaging-channels", {"individual-group-id": group.json()["data"]["id"]}),
    )
    assert channel.status_code == 201, channel.text
    return {
        "lead": lead,
        "nurse": nurse,
        "patient": patient,
        "other": other,
        "group": group.json()["data"]["id"],
        "channel": channel.json()["data"]["id"],
    }


def responder_attributes(group: str, **overrides: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "name": "After hours",
        "type": "auto-reply",
        "individual-group-id": group,
        "calendar-args": {
            "rules": [{"day": "everyday", "start-time": "00:00", "end-time": "00:00"}],
            "timezone": "Asia/Tokyo",
        },
        "args": {
            "message": "We are away; we will answer tomorrow.",
            "message-js": {"es_US": "Estamos fuera; responderemos mañana."},
        },
    }
    attributes.update(overrides)
    return attributes


async def create_responder(
    client: httpx.AsyncClient, org: Org, attributes: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        RESPONDERS, headers=org.admin, json=doc("messaging-responders", attributes)
    )


async def test_create_get_patch_enable_disable(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    team = await make_team(client, org)
    created = await create_responder(
        client,
        org,
        responder_attributes(
            team["group"],
            **{
                "calendar-args": {
                    "rules": [{"day": "weekdays", "start-time": "18:00", "end-time": "08:00"}]
                },
                "start-at": "2024-06-01T00:00:00Z",
            },
        ),
    )
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    attributes = data["attributes"]
    assert data["type"] == "messaging-responders"
    assert attributes["enabled"] is True
    assert attributes["type"] == "auto-reply"
    assert attributes["organization-id"] == org.id
    assert attributes["individual-group-id"] == team["group"]
    # No zone given: the organization's.
    assert attributes["calendar-args"] == {
        "rules": [{"day": "weekdays", "start-time": "18:00", "end-time": "08:00"}],
        "timezone": NEW_YORK,
    }
    assert attributes["args"]["message"] == "We are away; we will answer tomorrow."
    assert attributes["start-at"] == "2024-06-01T00:00:00.000Z"
    assert attributes["end-at"] is None
    assert attributes["created-by"] == org.admin_key_id
    ident = data["id"]

    shown = await client.get(f"{RESPONDERS}{ident}/", headers=org.readonly)
    assert shown.status_code == 200
    assert shown.json()["data"]["attributes"] == attributes
    assert (await client.get(f"{RESPONDERS}{ident}/", headers=other_org.admin)).status_code == 404

    patched = await client.patch(
        f"{RESPONDERS}{ident}/",
        headers=org.admin,
        json=doc(
            "messaging-responders",
            {
                "name": "Nights",
                "end-at": "2024-09-01T00:00:00Z",
                "args": {"message": "Back at 8", "individual-id": team["nurse"]},
            },
            ident,
        ),
    )
    assert patched.status_code == 200, patched.text
    changed = patched.json()["data"]["attributes"]
    assert changed["name"] == "Nights"
    assert changed["end-at"] == "2024-09-01T00:00:00.000Z"
    assert changed["args"] == {
        "message": "Back at 8",
        "message-js": {},
        "individual-id": team["nurse"],
    }
    cleared = await client.patch(
        f"{RESPONDERS}{ident}/",
        headers=org.admin,
        json=doc("messaging-responders", {"start-at": None}, ident),
    )
    assert cleared.json()["data"]["attributes"]["start-at"] is None

    def switches(events: list[dict[str, Any]]) -> int:
        return sum(e["attributes"]["changed-fields"] == ["enabled"] for e in events)

    async def audited() -> list[dict[str, Any]]:
        got = await client.get(
            "/v1/audit-events/", params={"filter[resource-id]": ident}, headers=org.admin
        )
        events: list[dict[str, Any]] = got.json()["data"]
        return events

    for action, enabled, recorded in (
        ("disable", False, 1),
        ("disable", False, 1),  # already disabled: nothing changed, nothing recorded
        ("enable", True, 2),
    ):
        response = await client.post(f"{RESPONDERS}{ident}/{action}/", headers=org.admin, json={})
        assert response.status_code == 201, response.text
        assert response.json()["data"]["attributes"]["enabled"] is enabled
        assert switches(await audited()) == recorded
    staff = await client.post(f"{RESPONDERS}{ident}/disable/", headers=org.staff, json={})
    assert staff.status_code == 403
    token = {"Authorization": f"Bearer {await individual_token(client, org, team['lead'])}"}
    assert (await client.get(RESPONDERS, headers=token)).status_code == 403


async def test_refusals(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    team = await make_team(client, org)
    foreign_group = (await make_team(client, other_org))["group"]

    async def refused(attributes: dict[str, Any], status: int = 400) -> dict[str, Any]:
        response = await create_responder(client, org, attributes)
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    def rules(start: str, end: str, day: str = "everyday") -> dict[str, Any]:
        return {"rules": [{"day": day, "start-time": start, "end-time": end}]}

    group = team["group"]
    await refused(responder_attributes(group, **{"calendar-args": rules("14:15:22Z", "18:00")}))
    await refused(responder_attributes(group, **{"calendar-args": rules("09:00", "25:00")}))
    await refused(
        responder_attributes(group, **{"calendar-args": rules("09:00", "17:00", "noday")})
    )
    await refused(responder_attributes(group, **{"calendar-args": {"rules": []}}))
    await refused(
        responder_attributes(
            group, **{"calendar-args": {**rules("09:00", "17:00"), "timezone": "Mars/Olympus"}}
        )
    )
    await refused(responder_attributes(group, type="broadcast"))
    await refused(responder_attributes(group, args={"message": " "}))
    await refused(responder_attributes(group, args={"message": "x", "extra": 1}))
    window = await refused(
        responder_attributes(
            group, **{"start-at": "2024-06-02T00:00:00Z", "end-at": "2024-06-01T00:00:00Z"}
        )
    )
    assert window["errors"][0]["source"]["pointer"] == "/data/attributes/end-at"
    await refused(responder_attributes(group, **{"start-at": "2024-06-02T00:00:00"}))
    await refused(responder_attributes(foreign_group), 404)
    outsider = await make_individual_id(client, org, **{"account-type": "provider"})
    await refused(
        responder_attributes(group, args={"message": "x", "individual-id": outsider}), 422
    )
    staff = await client.post(
        RESPONDERS, headers=org.staff, json=doc("messaging-responders", responder_attributes(group))
    )
    assert staff.status_code == 403


async def test_list_filters_and_sorts(client: httpx.AsyncClient, org: Org) -> None:
    team = await make_team(client, org)
    group = team["group"]
    made = {}
    for name, start, end in (
        ("a", "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"),
        ("b", "2024-03-01T00:00:00Z", None),
        ("c", None, "2024-01-15T00:00:00Z"),
    ):
        attributes = responder_attributes(group, name=name)
        if start:
            attributes["start-at"] = start
        if end:
            attributes["end-at"] = end
        response = await create_responder(client, org, attributes)
        assert response.status_code == 201, response.text
        made[name] = response.json()["data"]["id"]
    await client.post(f"{RESPONDERS}{made['b']}/disable/", headers=org.admin, json={})

    async def names(*params: tuple[str, str]) -> list[str]:
        query = [("filter[individual-group-id]", group), *params]
        response = await client.get(RESPONDERS, headers=org.staff, params=query)
        assert response.status_code == 200, response.text
        ids = [item["id"] for item in response.json()["data"]]
        return [name for ident in ids for name, made_id in made.items() if made_id == ident]

    assert await names() == ["a", "b", "c"]  # created-at
    assert await names(("sort", "-created-at")) == ["c", "b", "a"]
    assert await names(("sort", "start-at")) == ["c", "a", "b"]  # no start: since always
    assert await names(("sort", "-end-at")) == ["b", "a", "c"]  # no end: for ever
    assert await names(("filter[enabled]", "false")) == ["b"]
    assert await names(("filter[enabled]", "true")) == ["a", "c"]
    assert await names(("filter[cmp-start-at]", ">=2024-02-01T00:00:00Z")) == ["b"]
    assert await names(
        ("filter[cmp-end-at]", ">2024-01-10T00:00:00Z"),
        ("filter[cmp-end-at]", "<2024-01-20T00:00:00Z"),
    ) == ["c"]
    assert await names(("organization-id", org.id)) == ["a", "b", "c"]
    bad = await client.get(RESPONDERS, headers=org.staff, params={"sort": "name"})
    assert bad.status_code == 400


# --- replies -------------------------------------------------------------------------------------


async def post(
    client: httpx.AsyncClient, org: Org, channel: str, author: str, text: str
) -> dict[str, Any]:
    response = await client.post(
        MESSAGES,
        headers=org.staff,
        json=doc(
            "messaging-messages", {"channel-id": channel, "individual-id": author, "message": text}
        ),
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def reply_jobs(app: Any, org: Org) -> int:
    stmt = select(func.count()).where(
        Job.kind == REPLY_JOB, Job.organization_id == uuid.UUID(org.id)
    )
    async with app.state.database.sessionmaker() as session:
        return int((await session.execute(unscoped(stmt, REASON))).scalar_one())


async def replies(client: httpx.AsyncClient, org: Org, channel: str) -> list[dict[str, Any]]:
    response = await client.get(
        MESSAGES, headers=org.staff, params={"channel-id": channel, "sort": "seq"}
    )
    assert response.status_code == 200, response.text
    return [
        item["attributes"]
        for item in response.json()["data"]
        if item["attributes"]["source"] == "auto-responder"
    ]


async def run_replies(app: Any, concurrency: int = 1) -> int:
    return await run_until_idle(
        app.state.database, app.state.settings, kinds=[REPLY_JOB], concurrency=concurrency
    )


async def test_a_participants_post_gets_one_reply_per_quiet_period(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    team = await make_team(client, org)
    channel = team["channel"]
    created = await create_responder(client, org, responder_attributes(team["group"]))
    assert created.status_code == 201, created.text
    responder = created.json()["data"]["id"]

    # A provider writing never triggers it: not even a job.
    await post(client, org, channel, team["nurse"], "Results are in")
    assert await reply_jobs(app, org) == 0

    # The patient writes: one job, one reply, as the group's leader, in the patient's language.
    first = await post(client, org, channel, team["patient"], "¿Puedo tomar ibuprofeno?")
    assert await reply_jobs(app, org) == 1
    assert await run_replies(app) == 1
    answered = await replies(client, org, channel)
    assert len(answered) == 1
    assert answered[0]["message"] == "Estamos fuera; responderemos mañana."
    assert answered[0]["individual-id"] == team["lead"]
    assert answered[0]["seq"] == first["attributes"]["seq"] + 1
    # The reply itself triggers nothing.
    assert await reply_jobs(app, org) == 1

    # Within the quiet period: the second post (another patient) gets no reply.
    await post(client, org, channel, team["other"], "Me too: ibuprofen?")
    await run_replies(app)
    assert len(await replies(client, org, channel)) == 1

    # Once the quiet period has passed, the next post is answered again (in English).
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            unscoped(
                update(MessagingResponderReply)
                .where(MessagingResponderReply.responder_id == uuid.UUID(responder))
                .values(last_reply_at=datetime.now(UTC) - timedelta(hours=5)),
                REASON,
            )
        )
        await session.commit()
    await post(client, org, channel, team["other"], "Hello?")
    await run_replies(app)
    answered = await replies(client, org, channel)
    assert [a["message"] for a in answered] == [
        "Estamos fuera; responderemos mañana.",
        "We are away; we will answer tomorrow.",
    ]

    # Disabled: nothing is enqueued.
    await client.post(f"{RESPONDERS}{responder}/disable/", headers=org.admin, json={})
    jobs = await reply_jobs(app, org)
    await post(client, org, channel, team["patient"], "Anyone?")
    assert await reply_jobs(app, org) == jobs


async def test_inactive_calendars_do_not_reply_and_concurrent_posts_get_one_reply(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    team = await make_team(client, org)
    channel = team["channel"]
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    later = await create_responder(
        client, org, responder_attributes(team["group"], **{"start-at": future})
    )
    assert later.status_code == 201, later.text
    await post(client, org, channel, team["patient"], "Hello")
    assert await reply_jobs(app, org) == 0  # not yet active: no job at all

    # Two responders of the group, both active, answered as a chosen member.
    for name in ("one", "two"):
        response = await create_responder(
            client,
            org,
            responder_attributes(
                team["group"],
                name=name,
                args={"message": f"Reply {name}", "individual-id": team["nurse"]},
            ),
        )
        assert response.status_code == 201, response.text
    # Two participants post before any reply job runs; the jobs then run side by side.
    await post(client, org, channel, team["patient"], "First")
    await post(client, org, channel, team["other"], "Second")
    assert await reply_jobs(app, org) == 4
    await run_replies(app, concurrency=4)
    answered = await replies(client, org, channel)
    assert sorted(a["message"] for a in answered) == ["Reply one", "Reply two"]
    assert {a["individual-id"] for a in answered} == {team["nurse"]}
