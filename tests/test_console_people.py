"""Personal console logins (issue 18, Auth): ``/v1/console-users/`` (admin only, JSON:API,
audited) and signing in to the console with a user name and password, which becomes the same
server-side session as a key and acts as its person; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from courier.core.tenancy import scoped
from courier.core.time import utcnow
from courier.models.console_user import ConsoleUser
from courier.models.delivery import Delivery
from courier.models.email import UserEmail
from courier.models.user_notification import UserNotification
from courier.models.voice_call import VoiceDialLog
from tests.conftest import Org, doc
from tests.test_console import (
    CSRF,
    SIGNIN,
    TITLE,
    book,
    browser,
    clinic,
    make_channel,
    make_person,
    post,
    secret_of,
    sign_in,
)

__all__ = ["browser"]  # the cookie-keeping client fixture
PASSWORD = "correct horse battery staple"


async def make_login(
    client: httpx.AsyncClient,
    org: Org,
    individual: str,
    *,
    username: str | None = None,
    role: str = "staff",
    password: str = PASSWORD,
) -> dict[str, Any]:
    response = await client.post(
        "/v1/console-users/",
        json=doc(
            "console-users",
            {
                "username": username or f"nora-{uuid.uuid4().hex[:8]}",
                "password": password,
                "role": role,
                "individual-id": individual,
            },
        ),
        headers=org.admin,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def sign_in_personal(
    http: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    form = await http.get("/console/sign-in")
    token = SIGNIN.search(form.text)
    assert token is not None
    return await http.post(
        "/console/sign-in",
        data={"username": username, "password": password, "signin-token": token.group(1)},
    )


async def csrf_of(http: httpx.AsyncClient) -> str:
    found = CSRF.search((await http.get("/console/today")).text)
    assert found is not None
    return found.group(1)


# --- the API ----------------------------------------------------------------------------------


async def test_an_admin_creates_lists_changes_and_revokes_console_logins(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    nurse = await make_person(client, org, "Nora", "Nurse", "provider")
    name = f"Nora.Nurse.{uuid.uuid4().hex[:6]}"
    created = await make_login(client, org, nurse, username=name)
    attrs = created["attributes"]
    assert created["type"] == "console-users"
    assert attrs["username"] == name and attrs["role"] == "staff"
    assert attrs["individual-id"] == nurse and attrs["organization-id"] == org.id
    assert attrs["revoked-at"] is None and attrs["created-by"] == org.admin_key_id
    assert "password" not in attrs and "password-hash" not in attrs
    async with app.state.database.sessionmaker() as session:
        stored = (
            await session.execute(
                scoped(select(ConsoleUser.password_hash), ConsoleUser, uuid.UUID(org.id))
            )
        ).scalar_one()
    assert stored.startswith("scrypt$") and PASSWORD not in stored

    listed = await client.get("/v1/console-users/", headers=org.admin)
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["data"]] == [created["id"]]
    assert listed.json()["meta"]["page[total]"] == 1

    # Only an admin: staff and readonly keys get 403, on reads too.
    for headers in (org.staff, org.readonly):
        assert (await client.get("/v1/console-users/", headers=headers)).status_code == 403
        refused = await client.post(
            "/v1/console-users/",
            json=doc(
                "console-users",
                {
                    "username": "x-other",
                    "password": PASSWORD,
                    "role": "admin",
                    "individual-id": nurse,
                },
            ),
            headers=headers,
        )
        assert refused.status_code == 403

    changed = await client.patch(
        f"/v1/console-users/{created['id']}/",
        json=doc("console-users", {"role": "readonly"}, created["id"]),
        headers=org.admin,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["attributes"]["role"] == "readonly"

    gone = await client.delete(f"/v1/console-users/{created['id']}/", headers=org.admin)
    assert gone.status_code in (200, 204), gone.text
    after = await client.get(f"/v1/console-users/{created['id']}/", headers=org.admin)
    assert after.json()["data"]["attributes"]["revoked-at"] is not None

    audit = await client.get(
        "/v1/audit-events/",
        params={"filter[resource-type]": "console-users"},
        headers=org.admin,
    )
    rows = audit.json()["data"]
    assert sorted(r["attributes"]["action"] for r in rows) == ["created", "deleted", "updated"]
    assert all(r["attributes"]["actor-id"] == org.admin_key_id for r in rows)
    # Field names only, and never the password's value.
    assert PASSWORD not in audit.text
    created_row = next(r for r in rows if r["attributes"]["action"] == "created")
    assert "password" not in created_row["attributes"]["changed-fields"]


async def test_bad_console_logins_are_refused_with_clear_errors(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    nurse = await make_person(client, org, "Nora", "Nurse", "provider")
    patient = await make_person(client, org, "Petra", "Quill", "participant")
    foreign = await make_person(client, other_org, "Fay", "Far", "provider")
    taken = f"taken-{uuid.uuid4().hex[:8]}"
    await make_login(client, org, nurse, username=taken)

    async def attempt(attrs: dict[str, Any]) -> httpx.Response:
        base = {
            "username": f"fresh-{uuid.uuid4().hex[:8]}",
            "password": PASSWORD,
            "role": "staff",
            "individual-id": nurse,
        }
        return await client.post(
            "/v1/console-users/", json=doc("console-users", {**base, **attrs}), headers=org.admin
        )

    short = await attempt({"password": "short"})
    assert short.status_code == 400 and "at least 12 characters" in short.text
    assert (await attempt({"username": "a b"})).status_code == 400
    assert (await attempt({"role": "owner"})).status_code == 400
    not_provider = await attempt({"individual-id": patient})
    assert not_provider.status_code == 422 and "provider individual" in not_provider.text
    assert (await attempt({"individual-id": foreign})).status_code == 404
    duplicate = await attempt({"username": taken.upper()})  # case-insensitive
    assert duplicate.status_code == 409 and "taken" in duplicate.text
    other_org_dup = await client.post(
        "/v1/console-users/",
        json=doc(
            "console-users",
            {"username": taken, "password": PASSWORD, "role": "staff", "individual-id": foreign},
        ),
        headers=other_org.admin,
    )
    assert other_org_dup.status_code == 409  # unique across the installation
    assert (await attempt({"organization-id": other_org.id})).status_code == 404


# --- signing in ---------------------------------------------------------------------------------


async def test_a_personal_login_signs_in_replies_as_its_person_and_the_audit_names_them(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org
) -> None:
    nurse, _patient, channel = await clinic(client, org)
    login = await make_login(client, org, nurse)
    # User names are case-insensitive.
    signed = await sign_in_personal(browser, login["attributes"]["username"].upper())
    assert signed.status_code == 303 and signed.headers["location"] == "/console/today"
    assert PASSWORD not in str(browser.cookies)
    today = await browser.get("/console/today")
    assert "Nora Nurse" in today.text and "Role: <strong>staff</strong>" in today.text

    # Mine is this person's conversations; no "I am" chooser, no "Reply as".
    inbox = await browser.get("/console/inbox", params={"tab": "mine"})
    assert 'data-count="mine">1<' in inbox.text and "Petra Quill" in inbox.text
    assert "/console/acting-as" not in inbox.text
    page = await browser.get(f"/console/conversations/{channel}")
    assert ">Send<" in page.text and "Reply as" not in page.text

    csrf = await csrf_of(browser)
    sent = await browser.post(
        f"/console/conversations/{channel}/reply",
        data={"message": "Ice it tonight"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert sent.status_code == 200, sent.text
    listed = await client.get(
        "/v1/messaging-messages/", params={"channel-id": channel}, headers=org.staff
    )
    reply = next(m for m in listed.json()["data"] if m["attributes"]["message"] == "Ice it tonight")
    assert reply["attributes"]["individual-id"] == nurse
    audit = await client.get(
        "/v1/audit-events/",
        params={
            "filter[resource-type]": "messaging-messages",
            "filter[actor-type]": "console-user",
        },
        headers=org.admin,
    )
    rows = audit.json()["data"]
    assert [(r["attributes"]["action"], r["attributes"]["actor-id"]) for r in rows] == [
        ("created", nurse)
    ]
    # Choosing someone else is not for a personal login.
    chosen = await browser.post(
        "/console/acting-as", data={"individual-id": ""}, headers={"X-CSRF-Token": csrf}
    )
    assert chosen.status_code == 422


async def test_wrong_passwords_revoked_logins_and_roles_are_enforced(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org
) -> None:
    nurse, _patient, channel = await clinic(client, org)
    login = await make_login(client, org, nurse, role="readonly")
    nora = login["attributes"]["username"]
    wrong = await sign_in_personal(browser, nora, "not the password at all")
    assert wrong.status_code == 401 and "do not match" in wrong.text
    unknown = await sign_in_personal(browser, "nobody-here")
    assert unknown.status_code == 401 and "do not match" in unknown.text
    assert (await browser.get("/console/today")).status_code == 303

    # A readonly login renders no Send, and its forged POST is 403 (CSRF token and all).
    assert (await sign_in_personal(browser, nora)).status_code == 303
    page = await browser.get(f"/console/conversations/{channel}")
    assert ">Send<" not in page.text
    csrf = await csrf_of(browser)
    forged = await browser.post(
        f"/console/conversations/{channel}/reply",
        data={"message": "forged"},
        headers={"X-CSRF-Token": csrf},
    )
    assert forged.status_code == 403 and "console login with role readonly" in forged.text
    no_csrf = await browser.post(f"/console/conversations/{channel}/reply", data={"message": "x"})
    assert no_csrf.status_code == 403

    # The role is read at every request: promoted, the same session may reply.
    promoted = await client.patch(
        f"/v1/console-users/{login['id']}/",
        json=doc("console-users", {"role": "staff"}, login["id"]),
        headers=org.admin,
    )
    assert promoted.status_code == 200
    assert ">Send<" in (await browser.get(f"/console/conversations/{channel}")).text

    # A new password ends the open sessions; the old password no longer signs in.
    changed = await client.patch(
        f"/v1/console-users/{login['id']}/",
        json=doc("console-users", {"password": "a brand new passphrase"}, login["id"]),
        headers=org.admin,
    )
    assert changed.status_code == 200
    assert (await browser.get("/console/today")).status_code == 303
    assert (await sign_in_personal(browser, nora)).status_code == 401
    assert (await sign_in_personal(browser, nora, "a brand new passphrase")).status_code == 303

    # Revoked: the session ends at once and the login no longer signs in.
    revoked = await client.delete(f"/v1/console-users/{login['id']}/", headers=org.admin)
    assert revoked.status_code in (200, 204)
    htmx = await browser.get("/console/inbox/list", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/console/sign-in"
    again = await sign_in_personal(browser, nora, "a brand new passphrase")
    assert again.status_code == 401


async def test_the_sign_in_page_offers_both_ways_and_keys_still_work(
    browser: httpx.AsyncClient, org: Org
) -> None:
    form = await browser.get("/console/sign-in")
    assert 'autocomplete="current-password"' in form.text and 'name="api-key"' in form.text
    empty = await browser.post(
        "/console/sign-in",
        data={
            "username": "nora",
            "password": "",
            "signin-token": re.findall(r'name="signin-token" value="([^"]+)"', form.text)[0],
        },
    )
    assert empty.status_code == 400 and "Enter your password" in empty.text
    await sign_in(browser, secret_of(org.staff))
    today = await browser.get("/console/today")
    assert "data-person" not in today.text  # a key names no person


# --- inbox extras ---------------------------------------------------------------------------


async def test_the_inbox_filters_by_care_team_member_and_searches_patients(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org
) -> None:
    nurse, _patient, _channel = await clinic(client, org)  # Nora Nurse with Petra Quill
    olga = await make_person(client, org, "Olga", "Other", "provider")
    rui = await make_person(client, org, "Rui", "Stone", "participant")
    second = await make_channel(client, org, [olga, rui])
    await post(client, org, second, rui, "hello")
    await sign_in(browser, secret_of(org.readonly))

    def names(html: str) -> list[str]:
        return re.findall(r'id="conversation-[^"]+" href="[^"]+">([^<]+)<', html)

    everyone = await browser.get("/console/inbox")
    assert sorted(names(everyone.text)) == ["Petra Quill", "Rui Stone"]
    assert 'id="filter-team"' in everyone.text and 'type="search"' in everyone.text
    olgas = await browser.get("/console/inbox", params={"team": olga})
    assert names(olgas.text) == ["Rui Stone"] and 'data-count="all">1<' in olgas.text
    # Tabs and the live refresh keep the filter.
    assert f"tab=unread&amp;team={olga}" in olgas.text
    assert f"/console/inbox/list?tab=all&amp;team={olga}&amp;live=1" in olgas.text
    found = await browser.get("/console/inbox/list", params={"q": "  petra  "})
    assert names(found.text) == ["Petra Quill"]
    both = await browser.get("/console/inbox/list", params={"q": "quill", "team": olga})
    assert names(both.text) == [] and "for this filter" in both.text
    nurses = await browser.get("/console/inbox/list", params={"team": nurse, "tab": "unread"})
    assert names(nurses.text) == ["Petra Quill"]
    junk = await browser.get("/console/inbox/list", params={"team": "not-a-uuid", "tab": "x"})
    assert junk.status_code == 200 and len(names(junk.text)) == 2


async def test_the_conversation_shows_the_patients_consents_next_visit_and_other_channels(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org
) -> None:
    nurse, patient, channel = await clinic(client, org)
    other = await make_channel(client, org, [nurse, patient])
    start = utcnow() + timedelta(days=2)
    await book(client, org, "Knee check", start, nurse, patient)
    await sign_in(browser, secret_of(org.staff))
    page = await browser.get(f"/console/conversations/{channel}")
    assert page.status_code == 200
    assert "About the patient" in page.text
    assert "No SMS consent on record." in page.text
    assert "Knee check" in page.text and start.strftime("%Y-%m-%d") in page.text
    assert f'href="/console/conversations/{other}"' in page.text
    assert f'href="/console/patients/{patient}/timeline"' in page.text
    assert "Reply blocked" not in page.text  # an app channel needs no consent


# --- the patient timeline ---------------------------------------------------------------------


async def test_the_timeline_lists_everything_of_one_patient_and_each_view_is_audited(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    nurse, patient, channel = await clinic(client, org)
    await post(client, org, channel, nurse, "Rest it")
    start = utcnow() - timedelta(days=1)
    await book(client, org, "Follow-up visit", start, nurse, patient)
    org_id, person = uuid.UUID(org.id), uuid.UUID(patient)
    async with app.state.database.sessionmaker() as session:
        session.add(
            UserEmail(
                organization_id=org_id,
                individual_id=person,
                created_by="test",
                to=["petra@example.org"],
                subject="Your results are ready",
                status="sent",
            )
        )
        note = UserNotification(
            organization_id=org_id,
            individual_id=person,
            source="reminders",
            category="appointment",
            batch_id=uuid.uuid4(),
            channels=["push"],
        )
        session.add(note)
        await session.flush()
        session.add(
            Delivery(
                organization_id=org_id,
                channel="push",
                resource_type="user-notifications",
                resource_id=note.id,
                recipient="device",
                provider="push:sandbox",
                state="failed",
                rank=9,
                error_code="unregistered",
            )
        )
        session.add(
            VoiceDialLog(
                organization_id=org_id,
                individual_id=person,
                role="individual",
                to_number="+14155550100",
                status="no-answer",
            )
        )
        await session.commit()

    await sign_in(browser, secret_of(org.readonly))
    page = await browser.get(f"/console/patients/{patient}/timeline")
    assert page.status_code == 200, page.text
    title = TITLE.search(page.text)
    assert title is not None and "Petra" not in title.group(1)
    kinds = re.findall(r'<tr data-kind="(\w+)">', page.text)
    assert sorted(set(kinds)) == ["call", "email", "message", "notification", "visit"]
    assert kinds.count("message") == 2
    assert "Your results are ready" in page.text and "push failed (unregistered)" in page.text
    assert "no-answer" in page.text and "Follow-up visit" in page.text
    assert "Rest it" in page.text and "My knee hurts" in page.text

    audit = await client.get(
        "/v1/audit-events/",
        params={"filter[action]": "viewed-timeline", "filter[resource-id]": patient},
        headers=org.admin,
    )
    assert audit.status_code == 200, audit.text
    rows = audit.json()["data"]
    assert [(r["attributes"]["resource-type"], r["attributes"]["actor-type"]) for r in rows] == [
        ("individuals", "api-key")
    ]
    # A personal login's view names its person.
    login = await make_login(client, org, nurse)
    assert (await sign_in_personal(browser, login["attributes"]["username"])).status_code == 303
    assert (await browser.get(f"/console/patients/{patient}/timeline")).status_code == 200
    audit = await client.get(
        "/v1/audit-events/",
        params={"filter[action]": "viewed-timeline", "filter[actor-id]": nurse},
        headers=org.admin,
    )
    assert [r["attributes"]["actor-type"] for r in audit.json()["data"]] == ["console-user"]
    assert (await browser.get(f"/console/patients/{uuid.uuid4()}/timeline")).status_code == 404
    assert (await browser.get("/console/patients/nope/timeline")).status_code == 404


# --- templates ----------------------------------------------------------------------------------

SENSITIVE = {
    "sensitive": True,
    "neutral-text": "You have a new message from your care team.",
    "deep-link": "courier-app://results/{{ result_id }}",
    "required-data": {"result_id": "string", "result": "string", "due": "date"},
    "apn": {"title": "Lab result", "body": "Your test: {{ result }}"},
    "sms": {"body": "Your test: {{ result }}, by {{ due.strftime('%d/%m') }}"},
    "email": {"subject": "Lab result", "text": "Hello {{ individual.first_name }}: {{ result }}"},
}


async def test_templates_preview_per_channel_and_send_yourself_a_test(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org
) -> None:
    made = await client.post(
        "/v1/templates/",
        json=doc("templates", {"name": f"lab-{uuid.uuid4().hex[:6]}", **SENSITIVE}),
        headers=org.admin,
    )
    assert made.status_code == 201, made.text
    template = made.json()["data"]["id"]

    await sign_in(browser, secret_of(org.readonly))
    listing = await browser.get("/console/templates")
    assert f'href="/console/templates/{template}"' in listing.text and "sensitive" in listing.text
    page = await browser.get(f"/console/templates/{template}")
    assert page.status_code == 200

    def channel(name: str) -> str:
        found = re.search(rf'data-channel="{name}".*?</article>', page.text, re.S)
        assert found is not None, name
        return found.group(0)

    # The lock screen and the text carry only the neutral line and the link.
    assert "iOS push: lock screen" in channel("apn")
    assert "You have a new message from your care team." in channel("apn")
    assert "Your test" not in channel("apn") + channel("sms")
    assert "courier-app://results/sample" in channel("sms")
    # Email and the app carry the full text, for a sample patient.
    assert "Hello Sam: sample" in channel("email")
    assert "Your test: sample" in channel("app")
    # Readonly: no test button, and a forged one is refused.
    assert "Send me a test" not in page.text
    csrf = await csrf_of(browser)
    forged = await browser.post(
        f"/console/templates/{template}/test", headers={"X-CSRF-Token": csrf}
    )
    assert forged.status_code == 403
    assert (await browser.get(f"/console/templates/{uuid.uuid4()}")).status_code == 404

    # A personal login sends itself a test: a multicast to its own person, with sample data.
    nurse = await make_person(client, org, "Nora", "Nurse", "provider")
    login = await make_login(client, org, nurse)
    assert (await sign_in_personal(browser, login["attributes"]["username"])).status_code == 303
    page = await browser.get(f"/console/templates/{template}")
    assert "Send me a test" in page.text
    sent = await browser.post(
        f"/console/templates/{template}/test", headers={"X-CSRF-Token": await csrf_of(browser)}
    )
    assert sent.status_code == 200, sent.text
    assert "Test sent to you" in sent.text
    multicasts = await client.get("/v1/multicasts/", headers=org.admin)
    [multicast] = multicasts.json()["data"]
    assert multicast["attributes"]["filter-type"] == "individuals"
    assert multicast["attributes"]["filter-value"] == {"individual-ids": [nurse]}
    assert multicast["attributes"]["data"]["result"] == "sample"
    audit = await client.get(
        "/v1/audit-events/",
        params={"filter[resource-type]": "multicasts", "filter[actor-id]": nurse},
        headers=org.admin,
    )
    assert len(audit.json()["data"]) == 1

    # A key with nobody chosen is told to choose who it is.
    await sign_in(browser, secret_of(org.staff))
    page = await browser.get(f"/console/templates/{template}")
    assert "Choose who you are" in page.text
    unchosen = await browser.post(
        f"/console/templates/{template}/test", headers={"X-CSRF-Token": await csrf_of(browser)}
    )
    assert unchosen.status_code == 422


async def test_a_personal_login_marks_a_conversation_read_in_its_own_name(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org
) -> None:
    nurse, _patient, channel = await clinic(client, org)
    login = await make_login(client, org, nurse)
    assert (await sign_in_personal(browser, login["attributes"]["username"])).status_code == 303
    page = await browser.get(f"/console/conversations/{channel}")
    assert (
        "Mark read" in page.text
        and 'data-count="unread">1<' in (await browser.get("/console/inbox")).text
    )
    done = await browser.post(
        f"/console/conversations/{channel}/read", headers={"X-CSRF-Token": await csrf_of(browser)}
    )
    assert done.status_code == 303
    assert 'data-count="unread">0<' in (await browser.get("/console/inbox")).text
    assert "Mark read" not in (await browser.get(f"/console/conversations/{channel}")).text
    audit = await client.get(
        "/v1/audit-events/",
        params={"filter[resource-type]": "messaging-messages", "filter[actor-id]": nurse},
        headers=org.admin,
    )
    assert [a["attributes"]["actor-type"] for a in audit.json()["data"]] == ["console-user"]
    # Readonly: no button, and the forged POST is 403.
    await sign_in(browser, secret_of(org.readonly))
    forged = await browser.post(
        f"/console/conversations/{channel}/read", headers={"X-CSRF-Token": await csrf_of(browser)}
    )
    assert forged.status_code == 403


async def test_a_personal_login_gets_its_draft_back_and_another_login_does_not(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org
) -> None:
    nurse, _patient, channel = await clinic(client, org)
    other = await make_person(client, org, "Otto", "Other", "provider")
    mine = (await make_login(client, org, nurse))["attributes"]["username"]
    theirs = (await make_login(client, org, other))["attributes"]["username"]
    page = f"/console/conversations/{channel}"

    async def lock(draft: str) -> None:
        locked = await browser.post(
            "/console/lock",
            data={"path": page, "draft": draft},
            headers={"X-CSRF-Token": await csrf_of(browser)},
        )
        assert locked.status_code == 204, locked.text

    assert (await sign_in_personal(browser, mine)).status_code == 303
    await lock("Ice it tonight")
    back = await sign_in_personal(browser, mine)
    assert back.headers["location"] == page
    assert ">Ice it tonight</textarea>" in (await browser.get(page)).text
    await lock("Ice it tonight")
    elsewhere = await sign_in_personal(browser, theirs)
    assert elsewhere.headers["location"] == "/console/today"
    assert "Ice it tonight" not in (await browser.get(page)).text
