"""User notifications over HTTP: notify_many (as multicasts and announcers call it) renders the
template per recipient and sends a push to each device (what the sandbox phone shows), SMS only
with an accepted consent, emails rendered from the template; list, filters, ack, ack-previous,
daily counts; a gone token deactivated; a sensitive template neutral on the lock screen."""

from __future__ import annotations

import uuid

import httpx

from courier.domains.user_notifications.service import Notified, NotSent
from tests.conftest import Org
from tests.notify_support import make_device, make_patient, make_template, run_jobs, screen, send


async def test_a_push_per_device_with_the_rendering_and_badge(
    client: httpx.AsyncClient, org: Org
) -> None:
    template = await make_template(client, org)
    ana, _user = await make_patient(client, org)
    iphone = await make_device(client, org, ana, type="apn")
    pixel = await make_device(client, org, ana, type="fcm", token="fcm-" + uuid.uuid4().hex)
    muted = await make_device(client, org, ana, type="fcm", **{"allow-notification": False})

    results = await send(client, org, template["id"], [(ana, None)], dedupe_keys=["k1"])
    notified = results[uuid.UUID(ana)]
    assert isinstance(notified, Notified) and notified.created
    assert set(notified.channels) == {"apn", "fcm"}
    await run_jobs(client)

    [shown] = await screen(client, org, iphone["attributes"]["token"])
    assert shown["title"] == "Appointment with Dr. Oz"
    assert shown["body"] == "Hi Ana, your visit is in room 4"
    assert shown["badge"] == 1
    assert shown["data"]["notification-id"] == str(notified.notification_id)
    [on_pixel] = await screen(client, org, pixel["attributes"]["token"])
    assert on_pixel["body"] == "Visit with Dr. Oz, room 4"
    assert await screen(client, org, muted["attributes"]["token"]) == []

    # The same dedupe key again: the earlier notification, nothing sent twice.
    again = await send(client, org, template["id"], [(ana, None)], dedupe_keys=["k1"])
    repeat = again[uuid.UUID(ana)]
    assert isinstance(repeat, Notified) and not repeat.created
    assert repeat.notification_id == notified.notification_id
    await run_jobs(client)
    assert len(await screen(client, org, iphone["attributes"]["token"])) == 1

    # Missing data and an unknown individual are reported, not raised.
    bad = await send(
        client,
        org,
        template["id"],
        [(ana, None), (str(uuid.uuid4()), None)],
        data={"clinician": "Dr. Oz"},
    )
    assert isinstance(bad[uuid.UUID(ana)], NotSent)
    assert "room is missing" in bad[uuid.UUID(ana)].reason  # type: ignore[union-attr]
    assert any(isinstance(r, NotSent) and r.reason == "no-such-individual" for r in bad.values())
