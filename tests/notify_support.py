"""Shared helpers of the user-notification and escalation tests: a template, a patient with a
login account and devices, calling ``notify_many`` as a multicast chunk would, and reading
what the sandbox phone showed."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from sqlalchemy import select

from courier.core.db import commit
from courier.core.tenancy import scoped
from courier.domains.user_notifications.service import (
    NotificationTarget,
    Notified,
    NotSent,
    notify_many,
)
from courier.jobs import run_until_idle
from courier.models.template import Template
from courier.models.user_consent import UserConsent
from tests.conftest import Org, doc
from tests.factories import make_individual_id

REMINDER: dict[str, Any] = {
    "category": "appointments",
    "apn": {
        "title": "Appointment with {{ clinician }}",
        "body": "Hi {{ individual.first_name }}, your visit is in room {{ room }}",
        "category": "REMINDER",
    },
    "fcm": {"title": "Visit", "body": "Visit with {{ clinician }}, room {{ room }}"},
    "web": {"title": "Visit", "body": "Web: visit with {{ clinician }}"},
    "sms": {"body": "{{ individual.first_name }}: visit with {{ clinician }}, room {{ room }}"},
    "email": {
        "subject": "Your visit with {{ clinician }}",
        "text": "Room {{ room }}",
        "html": "<p>Room {{ room }} with {{ clinician }}</p>",
    },
    "required-data": {"clinician": "string", "room": "number"},
    "neutral-text": "You have a new message from your clinic.",
}
DATA = {"clinician": "Dr. Oz", "room": 4}


async def make_template(client: httpx.AsyncClient, org: Org, **attributes: Any) -> dict[str, Any]:
    values = {"name": f"t {uuid.uuid4().hex[:8]}", **REMINDER, **attributes}
    response = await client.post("/v1/templates/", headers=org.admin, json=doc("templates", values))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def make_patient(
    client: httpx.AsyncClient, org: Org, *, first_name: str = "Ana", **user: Any
) -> tuple[str, str]:
    """An individual and the login account whose primary individual it is: (individual, user)."""
    individual = await make_individual_id(client, org, **{"first-name": first_name})
    values = {
        "username": f"u{uuid.uuid4().hex[:8]}",
        "primary-individual-id": individual,
        "first-name": first_name,
        "last-name": "Lopez",
        **user,
    }
    response = await client.post("/v1/users/", headers=org.admin, json=doc("users", values))
    assert response.status_code == 201, response.text
    return individual, response.json()["data"]["id"]


async def make_device(
    client: httpx.AsyncClient, org: Org, individual: str, **attributes: Any
) -> dict[str, Any]:
    attributes.setdefault("type", "apn")
    attributes.setdefault("token", uuid.uuid4().hex * 2)
    response = await client.post(
        "/v1/user-devices/",
        headers=org.staff,
        json=doc("user-devices", {"individual-id": individual, **attributes}),
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def app_of(client: httpx.AsyncClient) -> Any:
    return client._transport.app  # type: ignore[attr-defined]


async def send(
    client: httpx.AsyncClient,
    org: Org,
    template_id: str,
    targets: Sequence[tuple[str, str | None]],
    *,
    data: Mapping[str, Any] | None = None,
    dedupe_keys: Sequence[str] | None = None,
    escalation: Sequence[Mapping[str, Any]] | None = None,
    source: str = "test:notify",
) -> dict[uuid.UUID, Notified | NotSent]:
    """``notify_many`` in a transaction of its own, as a multicast chunk calls it."""
    app = app_of(client)
    async with app.state.database.sessionmaker() as session:
        template = (
            await session.execute(
                scoped(
                    select(Template).where(Template.id == uuid.UUID(template_id)),
                    Template,
                    uuid.UUID(org.id),
                )
            )
        ).scalar_one()
        results = await notify_many(
            session,
            app.state.settings,
            organization_id=uuid.UUID(org.id),
            template=template,
            data=DATA if data is None else data,
            targets=[
                NotificationTarget(uuid.UUID(ind), uuid.UUID(user) if user else None)
                for ind, user in targets
            ],
            source=source,
            dedupe_keys=dedupe_keys,
            escalation=escalation,
        )
        await commit(session)
    return results


async def run_jobs(client: httpx.AsyncClient, horizon: float = 0.0) -> int:
    app = app_of(client)
    return await run_until_idle(app.state.database, app.state.settings, horizon=horizon)


async def screen(client: httpx.AsyncClient, org: Org, token: str) -> list[dict[str, Any]]:
    """What the sandbox phone with this token showed, oldest first."""
    got = await client.get("/sandbox/push/screen", params={"token": token}, headers=org.admin)
    assert got.status_code == 200, got.text
    shown: list[dict[str, Any]] = got.json()["data"]
    return shown


async def accept_sms_consent(client: httpx.AsyncClient, org: Org, user: str, phone: str) -> None:
    """The user said YES to texts on this phone (the consent flow itself is tested with SMS)."""
    app = app_of(client)
    async with app.state.database.sessionmaker() as session:
        session.add(
            UserConsent(
                organization_id=uuid.UUID(org.id),
                user_id=uuid.UUID(user),
                type="sms",
                state="accepted",
                target_id=phone,
                args={},
            )
        )
        await commit(session)


def new_phone() -> str:
    """A valid US number no other test texts (the sandbox's phones are shared)."""
    import random

    import phonenumbers

    while True:
        phone = f"+1415{random.randint(2, 9)}{random.randint(0, 999999):06d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(phone)):
            return phone


async def texts_to(client: httpx.AsyncClient, org: Org, phone: str) -> list[str]:
    got = await client.get("/sandbox/sms/messages", params={"number": phone}, headers=org.admin)
    assert got.status_code == 200, got.text
    return [m["body"] for m in sorted(got.json()["data"], key=lambda m: m["date-created"])]


async def listed(
    client: httpx.AsyncClient, headers: dict[str, str], query: str = ""
) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/user-notifications/{query}", headers=headers)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


async def get_notification(
    client: httpx.AsyncClient, headers: dict[str, str], ident: uuid.UUID | str
) -> dict[str, Any]:
    response = await client.get(f"/v1/user-notifications/{ident}/", headers=headers)
    assert response.status_code == 200, response.text
    attributes: dict[str, Any] = response.json()["data"]["attributes"]
    return attributes


def notified_id(results: Mapping[uuid.UUID, Notified | NotSent], individual: str) -> uuid.UUID:
    notified = results[uuid.UUID(individual)]
    assert isinstance(notified, Notified), notified
    return notified.notification_id
