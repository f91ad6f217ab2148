"""Notification templates over HTTP: CRUD, tenancy, template errors and the sandbox, locale
fallback, sensitive renderings, and users/{id}/validate-multicast-params."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Org, doc
from tests.factories import make_individual_id

TEMPLATES = "/v1/templates/"

REMINDER: dict[str, Any] = {
    "category": "appointments",
    "apn": {
        "title": "Appointment with {{ clinician }}",
        "body": "Hi {{ individual.first_name }}, your visit is on "
        "{{ visit.strftime('%d/%m %H:%M') }}",
        "category": "REMINDER",
        "data": {"kind": "reminder {{ fasting }}"},
    },
    "fcm": {"body": "Visit with {{ clinician }} on {{ visit.strftime('%d/%m') }}"},
    "sms": {"body": "{{ individual.first_name }}: visit with {{ clinician }}, room {{ room }}"},
    "email": {
        "subject": "Your visit with {{ clinician }}",
        "text": "Fasting: {{ 'yes' if fasting else 'no' }}",
        "html": "<p>{{ clinician }}</p>",
    },
    "required-data": {
        "clinician": "string",
        "visit": "date",
        "room": "number",
        "fasting": "boolean",
    },
    "locales": {
        "es": {
            "sms": {"body": "{{ individual.first_name }}: cita con {{ clinician }}"},
            "neutral-text": "Tiene una nueva notificación.",
        }
    },
}
GOOD_DATA = {"clinician": "Dr. Oz", "visit": "2024-03-05T14:30:00Z", "room": 4, "fasting": True}


async def create(client: httpx.AsyncClient, org: Org, **attributes: Any) -> httpx.Response:
    values = {"name": f"t {uuid.uuid4().hex[:8]}", **attributes}
    return await client.post(TEMPLATES, headers=org.admin, json=doc("templates", values))


async def created(client: httpx.AsyncClient, org: Org, **attributes: Any) -> dict[str, Any]:
    response = await create(client, org, **attributes)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def make_user(client: httpx.AsyncClient, org: Org, **attributes: Any) -> str:
    individual = await make_individual_id(client, org, **{"first-name": "Ana"})
    suffix = uuid.uuid4().hex[:8]
    values = {"username": f"u{suffix}", "primary-individual-id": individual, **attributes}
    response = await client.post("/v1/users/", headers=org.admin, json=doc("users", values))
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


async def validate(
    client: httpx.AsyncClient,
    org: Org,
    user_id: str,
    template_id: str,
    data: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        f"/v1/users/{user_id}/validate-multicast-params/",
        headers=headers or org.staff,
        json={"template-id": template_id, "data": data, "organization-id": org.id},
    )


def pointer(response: httpx.Response) -> str:
    source: dict[str, str] = response.json()["errors"][0]["source"]
    return source["pointer"]


async def test_create_list_get_patch(client: httpx.AsyncClient, org: Org) -> None:
    template = await created(client, org, **REMINDER)
    attrs = template["attributes"]
    assert attrs["apn"]["title"] == REMINDER["apn"]["title"]
    assert attrs["fcm"]["title"] is None
    assert attrs["web"] is None
    assert attrs["required-data"] == REMINDER["required-data"]
    assert attrs["locales"]["es"]["neutral-text"] == "Tiene una nueva notificación."
    assert attrs["sensitive"] is False
    assert attrs["organization-id"] == org.id

    listed = await client.get(TEMPLATES, headers=org.readonly)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["data"]] == [template["id"]]
    by_name = await client.get(
        TEMPLATES, headers=org.readonly, params={"filter[name]": attrs["name"]}
    )
    assert [item["id"] for item in by_name.json()["data"]] == [template["id"]]
    other_category = await client.get(
        TEMPLATES, headers=org.readonly, params={"filter[category]": "billing"}
    )
    assert other_category.json()["data"] == []

    path = f"{TEMPLATES}{template['id']}/"
    got = await client.get(path, headers=org.readonly)
    assert got.status_code == 200
    assert got.json()["data"]["attributes"]["sms"] == REMINDER["sms"]

    patched = await client.patch(
        path,
        headers=org.admin,
        json=doc(
            "templates",
            {
                "fcm": None,
                "sms": {"body": "Room {{ room }}"},
                "category": "visits",
                "organization-id": org.id,
            },
            template["id"],
        ),
    )
    assert patched.status_code == 200, patched.text
    attrs = patched.json()["data"]["attributes"]
    assert attrs["fcm"] is None
    assert attrs["sms"] == {"body": "Room {{ room }}"}
    assert attrs["category"] == "visits"
    assert attrs["apn"]["body"] == REMINDER["apn"]["body"]

    # Staff may read but not write; names are unique in the organization.
    forbidden = await client.patch(
        path, headers=org.staff, json=doc("templates", {"category": "x"}, template["id"])
    )
    assert forbidden.status_code == 403
    duplicate = await create(client, org, name=attrs["name"], sms={"body": "Hi"})
    assert duplicate.status_code == 409
    # A template serves at least one channel.
    empty = await create(client, org)
    assert empty.status_code == 400
    nulled = await client.patch(
        path,
        headers=org.admin,
        json=doc("templates", {"apn": None, "sms": None, "email": None}, template["id"]),
    )
    assert nulled.status_code == 400


async def test_another_organizations_template_is_not_found(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    template = await created(client, other_org, sms={"body": "Hello"})
    path = f"{TEMPLATES}{template['id']}/"
    assert (await client.get(path, headers=org.admin)).status_code == 404
    patched = await client.patch(
        path, headers=org.admin, json=doc("templates", {"category": "x"}, template["id"])
    )
    assert patched.status_code == 404
    own = await created(client, org, sms={"body": "Hello"})
    moved = await client.patch(
        f"{TEMPLATES}{own['id']}/",
        headers=org.admin,
        json=doc("templates", {"organization-id": other_org.id}, own["id"]),
    )
    assert moved.status_code == 404
    listed = await client.get(TEMPLATES, headers=org.admin)
    assert template["id"] not in [item["id"] for item in listed.json()["data"]]
    user = await make_user(client, org)
    checked = await validate(client, org, user, template["id"], {})
    assert checked.status_code == 404
    assert pointer(checked) == "/template-id"
    other_user = await make_user(client, other_org)
    assert (await validate(client, org, other_user, own["id"], {})).status_code == 404


@pytest.mark.parametrize(
    ("attributes", "where"),
    [
        ({"apn": {"body": "Hi {{ name "}}, "/data/attributes/apn/body"),
        ({"sms": {"body": "ok"}, "email": {"subject": "{% if %}", "text": "x"}},
         "/data/attributes/email/subject"),
        ({"web": {"body": "ok", "data": {"url": "{{ }}"}}}, "/data/attributes/web/data/url"),
        ({"sms": {"body": "ok"}, "locales": {"es": {"sms": {"body": "{{ unknown_key }}"}}}},
         "/data/attributes/locales/es/sms/body"),
        ({"sms": {"body": "{% for x in y %}{% endfor %}"}}, "/data/attributes/sms/body"),
        ({"sms": {"body": "{{ patient }}"}}, "/data/attributes/sms/body"),
        ({"sms": {"body": "{{ x | attr('y') }}"}, "required-data": {"x": "string"}},
         "/data/attributes/sms/body"),
        ({"sms": {"body": "x"}, "sensitive": True}, "/data/attributes/deep-link"),
        ({"sms": {"body": "x"}, "required-data": {"individual": "string"}},
         "/data/attributes/required-data/individual"),
        ({"sms": {"body": "x"}, "locales": {"not a tag": {}}},
         "/data/attributes/locales/not a tag"),
    ],
)  # fmt: skip
async def test_template_errors_are_400_naming_the_field(
    client: httpx.AsyncClient, org: Org, attributes: dict[str, Any], where: str
) -> None:
    response = await create(client, org, **attributes)
    assert response.status_code == 400, response.text
    assert pointer(response) == where


async def test_a_bad_patch_leaves_the_template_as_it_was(
    client: httpx.AsyncClient, org: Org
) -> None:
    template = await created(client, org, sms={"body": "Hello"})
    path = f"{TEMPLATES}{template['id']}/"
    response = await client.patch(
        path, headers=org.admin, json=doc("templates", {"sms": {"body": "{{"}}, template["id"])
    )
    assert response.status_code == 400
    assert pointer(response) == "/data/attributes/sms/body"
    got = await client.get(path, headers=org.admin)
    assert got.json()["data"]["attributes"]["sms"] == {"body": "Hello"}


async def test_dropping_a_data_key_a_text_uses_is_refused(
    client: httpx.AsyncClient, org: Org
) -> None:
    template = await created(
        client,
        org,
        sms={"body": "Room {{ room }}"},
        email={"subject": "Visit", "text": "Room {{ room }} on {{ day }}"},
        **{"required-data": {"room": "number", "day": "string"}},
    )
    response = await client.patch(
        f"{TEMPLATES}{template['id']}/",
        headers=org.admin,
        json=doc("templates", {"required-data": {"room": "number"}}, template["id"]),
    )
    assert response.status_code == 400
    assert pointer(response) == "/data/attributes/email/text"
    assert "'day'" in response.json()["errors"][0]["detail"]


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ clinic.__class__ }}",
        "{{ clinic['__class__'] }}",
        "{{ clinic.upper() }}",
        "{{ individual.__dict__ }}",
        "{{ organization.items() }}",
        "{{ ''.format }}",
        "{{ lipsum.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{% set x = 1 %}",
        "{% include 'etc/passwd' %}",
    ],
)
async def test_sandbox_escapes_are_refused(
    client: httpx.AsyncClient, org: Org, source: str
) -> None:
    response = await create(
        client, org, sms={"body": source}, **{"required-data": {"clinic": "string"}}
    )
    assert response.status_code == 400, response.text
    assert pointer(response) == "/data/attributes/sms/body"


async def test_locale_fallback(client: httpx.AsyncClient, org: Org) -> None:
    template = await created(
        client,
        org,
        sms={"body": "Hello {{ individual.first_name }}"},
        email={"subject": "Hello", "text": "Hello"},
        locales={
            "es": {"sms": {"body": "Hola {{ individual.first_name }}"}},
            "fr-CA": {"sms": {"body": "Allô {{ individual.first_name }}"}},
        },
    )

    async def sms_for(locale: str) -> dict[str, Any]:
        user = await make_user(client, org, locale=locale)
        response = await validate(client, org, user, template["id"], {})
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["success"] is True, body
        rendered: dict[str, Any] = body["rendered"]
        return rendered

    # The exact tag, then its language (any case), then the organization's locale.
    assert (await sms_for("fr-CA"))["sms"] == {"body": "Allô Ana", "locale": "fr-CA"}
    assert (await sms_for("es-MX"))["sms"] == {"body": "Hola Ana", "locale": "es"}
    de = await sms_for("de")
    assert de["sms"] == {"body": "Hello Ana", "locale": None}
    assert de["email"]["locale"] is None  # no variant for email: the default body
    preference = await client.post(
        "/v1/org-preferences/",
        headers=org.admin,
        json=doc("org-preferences", {"name": "locale", "value-js": "es"}),
    )
    assert preference.status_code == 201, preference.text
    assert (await sms_for("de"))["sms"] == {"body": "Hola Ana", "locale": "es"}
    # The template can also be named by its name.
    user = await make_user(client, org, locale="es")
    by_name = await validate(client, org, user, template["attributes"]["name"], {})
    assert by_name.json()["rendered"]["sms"]["body"] == "Hola Ana"


async def test_sensitive_template_hides_its_content_from_pushes_and_texts(
    client: httpx.AsyncClient, org: Org
) -> None:
    template = await created(
        client,
        org,
        sensitive=True,
        **{
            "neutral-text": "You have a new message from your care team.",
            "deep-link": "courier-app://results/{{ result_id }}",
            "required-data": {"result_id": "string", "result": "string"},
        },
        apn={
            "title": "Lab result",
            "body": "HIV test: {{ result }}",
            "data": {"r": "{{ result }}"},
        },
        fcm={"title": "Lab result", "body": "HIV test: {{ result }}"},
        web={"body": "HIV test: {{ result }}"},
        sms={"body": "HIV test: {{ result }}"},
        email={"subject": "Lab result", "text": "HIV test: {{ result }}"},
    )
    user = await make_user(client, org)
    response = await validate(
        client, org, user, template["id"], {"result_id": "r-77", "result": "negative"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True, body
    rendered = body["rendered"]
    for channel in ("apn", "fcm", "web"):
        push = rendered[channel]
        assert push["body"] == "You have a new message from your care team."
        assert push["data"] == {"deep-link": "courier-app://results/r-77"}
        text = json.dumps(push)
        assert "HIV" not in text and "negative" not in text and "Lab result" not in text
    assert rendered["sms"]["body"] == (
        "You have a new message from your care team. courier-app://results/r-77"
    )
    assert rendered["email"]["text"] == "HIV test: negative"
    assert rendered["email"]["subject"] == "Lab result"
    assert rendered["app"]["body"] == "HIV test: negative"
    assert "sensitive" in body["info"]


async def test_validate_multicast_params(client: httpx.AsyncClient, org: Org) -> None:
    template = await created(client, org, **REMINDER)
    user = await make_user(client, org, tz="Europe/Madrid")

    good = await validate(client, org, user, template["id"], GOOD_DATA)
    assert good.status_code == 201, good.text
    body = good.json()
    assert body["success"] is True, body
    assert "apn" in body["info"] and "email" in body["info"]
    rendered = body["rendered"]
    # The time is shown in the user's time zone (14:30Z is 15:30 in Madrid).
    assert rendered["apn"]["body"] == "Hi Ana, your visit is on 05/03 15:30"
    assert rendered["apn"]["title"] == "Appointment with Dr. Oz"
    assert rendered["apn"]["data"] == {"kind": "reminder True"}
    assert rendered["sms"]["body"] == "Ana: visit with Dr. Oz, room 4"
    assert rendered["email"]["text"] == "Fasting: yes"
    assert rendered["app"]["title"] == "Appointment with Dr. Oz"

    missing = await validate(
        client, org, user, template["id"], {k: v for k, v in GOOD_DATA.items() if k != "room"}
    )
    assert missing.status_code == 201
    assert missing.json()["success"] is False
    assert "room is missing" in missing.json()["info"]
    assert missing.json()["rendered"] is None

    wrong = await validate(
        client,
        org,
        user,
        template["id"],
        {**GOOD_DATA, "room": "4", "fasting": "yes", "visit": "2024-03-05T14:30:00"},
    )
    info = wrong.json()["info"]
    assert wrong.json()["success"] is False
    assert "room must be a number, got string" in info
    assert "fasting must be a boolean, got string" in info
    assert "visit must be a date" in info
    assert "clinician" not in info

    edges = await validate(
        client,
        org,
        user,
        template["id"],
        {**GOOD_DATA, "room": 10**30, "visit": "0001-01-01T00:00:00+05:00"},
    )
    assert edges.status_code == 201, edges.text
    assert edges.json()["success"] is False
    assert "visit must be a date" in edges.json()["info"]
    assert "room" not in edges.json()["info"]
    date_only = await validate(
        client, org, user, template["id"], {**GOOD_DATA, "visit": "2024-03-05"}
    )
    assert date_only.json()["rendered"]["apn"]["body"] == "Hi Ana, your visit is on 05/03 00:00"

    # HTML in data is escaped in email html only.
    html = await validate(client, org, user, template["id"], {**GOOD_DATA, "clinician": "<b>"})
    assert html.json()["rendered"]["email"]["html"] == "<p>&lt;b&gt;</p>"
    assert html.json()["rendered"]["email"]["subject"] == "Your visit with <b>"

    # Roles and ids.
    readonly = await validate(client, org, user, template["id"], GOOD_DATA, org.readonly)
    assert readonly.status_code == 403
    unknown = await validate(client, org, user, "no such template", GOOD_DATA)
    assert unknown.status_code == 404
    stranger = await make_individual_id(client, org)
    not_theirs = await client.post(
        f"/v1/users/{user}/validate-multicast-params/",
        headers=org.staff,
        json={"template-id": template["id"], "data": GOOD_DATA, "individual-id": stranger},
    )
    assert not_theirs.status_code == 422
    no_data = await client.post(
        f"/v1/users/{user}/validate-multicast-params/",
        headers=org.staff,
        json={"template-id": template["id"]},
    )
    assert no_data.status_code == 400
