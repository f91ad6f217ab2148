"""One ``notify_many`` call (a multicast's chunk) for recipients of different locales and time
zones: each notification shows its own recipient's name, its own locale's variant and the
template's dates in its own time zone, although what no recipient changes is rendered once per
call."""

from __future__ import annotations

import uuid

import httpx

from courier.domains.user_notifications.service import Notified
from tests.conftest import Org, doc
from tests.notify_support import get_notification, make_patient, send

MIXED = {
    "apn": {
        "title": "Visit at {{ at.strftime('%H:%M') }}",
        "body": "Hi {{ individual.first_name }}, {{ clinician }} sees you",
        "data": {"kind": "visit", "room": "{{ clinician }}"},
    },
    "locales": {
        "es": {
            "apn": {
                "title": "Cita a las {{ at.strftime('%H:%M') }}",
                "body": "Hola {{ individual.first_name }}, le atiende {{ clinician }}",
                "data": {"kind": "cita", "room": "{{ clinician }}"},
            }
        }
    },
    "required-data": {"clinician": "string", "at": "date"},
}


async def test_each_recipient_of_one_call_gets_their_name_locale_and_time_zone(
    client: httpx.AsyncClient, org: Org
) -> None:
    response = await client.post(
        "/v1/templates/", headers=org.admin, json=doc("templates", {"name": "visit", **MIXED})
    )
    assert response.status_code == 201, response.text
    template = response.json()["data"]
    people = {
        "Ana": await make_patient(client, org, first_name="Ana", locale="es", tz="UTC"),
        "Bo": await make_patient(client, org, first_name="Bo", tz="Asia/Tokyo"),
        "Cy": await make_patient(client, org, first_name="Cy", locale="es", tz="Asia/Tokyo"),
        "Di": await make_patient(client, org, first_name="Di", tz="UTC"),
    }
    results = await send(
        client,
        org,
        template["id"],
        list(people.values()),
        data={"clinician": "Dr. Oz", "at": "2030-05-01T09:30:00Z"},
    )
    shown = {}
    for name, (individual, _user) in people.items():
        notified = results[uuid.UUID(individual)]
        assert isinstance(notified, Notified), notified
        stored = await get_notification(client, org.admin, notified.notification_id)
        shown[name] = stored["data"]["apn"]
    assert shown["Ana"]["title"] == "Cita a las 09:30"
    assert shown["Ana"]["body"] == "Hola Ana, le atiende Dr. Oz"
    assert shown["Ana"]["data"] == {"kind": "cita", "room": "Dr. Oz"}
    assert shown["Bo"]["title"] == "Visit at 18:30"  # Tokyo is 9 hours ahead
    assert shown["Bo"]["body"] == "Hi Bo, Dr. Oz sees you"
    assert shown["Bo"]["data"] == {"kind": "visit", "room": "Dr. Oz"}
    assert shown["Cy"]["title"] == "Cita a las 18:30"
    assert shown["Cy"]["body"] == "Hola Cy, le atiende Dr. Oz"
    assert shown["Di"]["title"] == "Visit at 09:30"
    assert shown["Di"]["body"] == "Hi Di, Dr. Oz sees you"
