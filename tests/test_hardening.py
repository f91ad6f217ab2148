"""Issue 10's examples, each over HTTP on the real app: bad input is a 400, never a 500.

The classes are closed in the generic layer (courier.core.http, courier.core.types,
courier.core.time, courier.jsonapi.query); each test below is one of the reported examples or a
neighbour of it. tests/test_fuzz_types.py fuzzes the same layer with hypothesis.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from courier.app import create_app
from tests.conftest import Org, doc, make_settings
from tests.factories import make_messaging_message, message_row

OVERFLOWING_TIMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def nested_text(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def assert_400(response: httpx.Response, *, pointer: str | None = None) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["statusCode"] == 400
    if pointer is not None:
        pointers = [e.get("source", {}).get("pointer") for e in body["errors"]]
        assert pointer in pointers, body
    return body


# --- JSON depth ------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [40, 252, 500, 1023, 1024, 1025, 5000])
async def test_deeply_nested_json_is_400_at_any_depth(
    client: httpx.AsyncClient, org: Org, depth: int
) -> None:
    body = '{"data": {"type": "individuals", "attributes": {"extended": ' + nested_text(depth)
    body += "}}}"
    response = await client.post(
        "/v1/individuals/",
        content=body,
        headers={**org.admin, "Content-Type": "application/json"},
    )
    assert_400(response)


async def test_extended_depth_is_bounded_and_listing_keeps_working(
    client: httpx.AsyncClient, org: Org
) -> None:
    deep = await client.post(
        "/v1/individuals/",
        json=doc("individuals", {"first-name": "Deep", "extended": nested(25)}),
        headers=org.admin,
    )
    assert_400(deep, pointer="/data/attributes/extended")
    also_deep = await client.post(
        "/v1/individuals/",
        json=doc("individuals", {"first-name": "Deep", "extended": nested(251)}),
        headers=org.admin,
    )
    assert_400(also_deep)
    fine = await client.post(
        "/v1/individuals/",
        json=doc(
            "individuals", {"first-name": "Fine", "last-name": "Deep", "extended": nested(19)}
        ),
        headers=org.admin,
    )
    assert fine.status_code == 201, fine.text
    listing = await client.get("/v1/individuals/", headers=org.admin)
    assert listing.status_code == 200, listing.text
    assert fine.json()["data"]["id"] in {item["id"] for item in listing.json()["data"]}


# --- integers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "page[offset]=9223372036854775808",
        "start=99999999999999999999",
        "page[offset]=-1",
        "page[limit]=1_0",
        "page[offset]=%EF%BC%91",  # a full-width digit: int() would take it
        "size=" + "9" * 5000,
    ],
)
async def test_integer_parameters_are_bounded(
    client: httpx.AsyncClient, org: Org, query: str
) -> None:
    assert_400(await client.get(f"/v1/individuals/?{query}", headers=org.admin))


async def test_largest_offset_the_database_holds_is_an_empty_page(
    client: httpx.AsyncClient, org: Org
) -> None:
    response = await client.get(
        "/v1/individuals/?page[offset]=9223372036854775807", headers=org.admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


# --- times that overflow when moved to UTC ---------------------------------------------------


@pytest.mark.parametrize("moment", [*OVERFLOWING_TIMES, "9999-12-31T23:59:59Z"])
async def test_overflowing_times_in_filters_are_400(
    client: httpx.AsyncClient, org: Org, moment: str
) -> None:
    response = await client.get(
        "/v1/audit-events/", params={"filter[cmp-occurred-at]": f">={moment}"}, headers=org.admin
    )
    body = assert_400(response)
    assert body["errors"][0]["source"] == {"parameter": "filter[cmp-occurred-at]"}


@pytest.mark.parametrize("moment", OVERFLOWING_TIMES)
@pytest.mark.parametrize(
    ("path", "type_name", "attribute"),
    [
        ("/v1/api-keys/", "api-keys", "expires-at"),
        ("/v1/sniffers/", "sniffers", "valid-until"),
        ("/v1/messaging-responders/", "messaging-responders", "start-at"),
        ("/v1/messaging-responders/", "messaging-responders", "end-at"),
        ("/v1/individual-groups/", "individual-groups", "last-sync-time"),
        ("/v1/individuals/", "individuals", "last-sync-time"),
    ],
)
async def test_overflowing_times_in_bodies_are_400(
    client: httpx.AsyncClient, org: Org, moment: str, path: str, type_name: str, attribute: str
) -> None:
    response = await client.post(path, json=doc(type_name, {attribute: moment}), headers=org.admin)
    assert_400(response, pointer=f"/data/attributes/{attribute}")


@pytest.mark.parametrize("moment", OVERFLOWING_TIMES)
async def test_overflowing_times_in_action_bodies_are_400(
    client: httpx.AsyncClient, org: Org, moment: str
) -> None:
    # A real message: an unknown one is 404 before its body is read.
    message = await make_messaging_message(client, org)
    ack = await client.post(
        f"/v1/messaging-messages/{message}/ack/",
        json={"ack-user-time": moment},
        headers=org.staff,
    )
    assert ack.status_code == 400, ack.text
    assert "ack-user-time" in ack.text
    badge = {
        "individual-id": str(uuid.uuid4()),
        "type": "messages",
        "count": 1,
        "timestamp": moment,
    }
    badges = await client.post(
        "/v1/bulk-badge-counts/",
        json=doc("bulk-badge-counts", {"values": [badge]}),
        headers=org.staff,
    )
    assert badges.status_code == 400, badges.text
    assert "timestamp" in badges.text


# --- NUL characters --------------------------------------------------------------------------


async def test_nul_in_a_text_field_is_400(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.post(
        "/v1/individuals/",
        json=doc("individuals", {"first-name": "Ann\u0000e"}),
        headers=org.admin,
    )
    body = assert_400(response, pointer="/data/attributes/first-name")
    assert "NUL" in body["errors"][0]["detail"]
    in_key = await client.post(
        "/v1/individuals/",
        json=doc("individuals", {"first-name": "Anne", "extended": {"k\u0000": 1}}),
        headers=org.admin,
    )
    assert_400(in_key)
    in_json_value = await client.post(
        "/v1/individuals/",
        json=doc("individuals", {"first-name": "Anne", "extended": {"k": ["\u0000"]}}),
        headers=org.admin,
    )
    assert_400(in_json_value, pointer="/data/attributes/extended/k/0")


async def test_nul_in_a_text_filter_is_400(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.get("/v1/organizations/?filter[name]=a%00b", headers=org.admin)
    body = assert_400(response)
    assert body["errors"][0]["source"] == {"parameter": "filter[name]"}


async def test_nul_in_the_path_is_400(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.get("/v1/individuals/a%00b/", headers=org.admin)
    assert_400(response)


# --- plugin templates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{{ " + "(" * 80 + "1" + ")" * 80 + " }}",
        "{{ channel.name" + "|lower" * 1600 + " }}",
        "{{ 1" + "+1" * 2000 + " }}",
    ],
)
async def test_deeply_nested_templates_are_400(
    client: httpx.AsyncClient, org: Org, template: str
) -> None:
    response = await client.post(
        "/v1/messaging-plugins/",
        json=doc(
            "messaging-plugins",
            {"name": "deep", "type": "template", "args": {"template": template}},
        ),
        headers=org.admin,
    )
    body = assert_400(response)
    assert "nests" in response.text, body


# --- webhook URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://xn--/",
        "https://" + "a" * 300 + ".test/",
        "https://" + "a" * 300 + "/",
        "https://a..b/",
        "https://" + ".".join(["a" * 60] * 5) + "/",
    ],
)
async def test_malformed_webhook_hosts_are_400(
    client: httpx.AsyncClient, org: Org, url: str
) -> None:
    response = await client.post(
        "/v1/webhooks/", json=doc("webhooks", {"url": url, "event-types": ["*"]}), headers=org.admin
    )
    body = assert_400(response, pointer="/data/attributes/url")
    assert "host" in body["errors"][0]["detail"]


# --- sort ------------------------------------------------------------------------------------


async def test_repeated_sort_fields_are_refused_and_counted(
    client: httpx.AsyncClient, org: Org
) -> None:
    many = await client.get("/v1/individuals/?sort=" + ",".join(["id"] * 2000), headers=org.admin)
    assert_400(many)
    repeated = await client.get("/v1/organizations/?sort=name,-name", headers=org.admin)
    body = assert_400(repeated)
    assert "more than once" in body["errors"][0]["detail"]
    as_params = await client.get("/v1/organizations/?sort=name&sort=name", headers=org.admin)
    assert_400(as_params)
    fine = await client.get("/v1/organizations/?sort=-name", headers=org.admin)
    assert fine.status_code == 200, fine.text


# --- Host header -----------------------------------------------------------------------------


async def start_upload(
    http: httpx.AsyncClient, org: Org, message_id: str, host: str
) -> httpx.Response:
    return await http.post(
        "/v1/messaging-attachments/",
        json=doc("messaging-attachments", {"message-id": message_id, "filename": "a.pdf"}),
        headers={**org.staff, "Host": host},
    )


async def test_forged_host_gets_no_links(client: httpx.AsyncClient, org: Org) -> None:
    message_id = await message_row(client, org)
    forged = await start_upload(client, org, message_id, "evil.example")
    body = assert_400(forged)
    assert body["errors"][0]["code"] == "host-not-allowed"
    assert "COURIER_PUBLIC_URL" in body["errors"][0]["detail"]
    assert "evil.example" not in forged.text
    allowed = await start_upload(client, org, message_id, "courier.test")
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["data"]["upload-url"].startswith("http://courier.test/uploads/")


async def test_public_url_wins_over_any_host(
    database_url: str, data_dir: Path, client: httpx.AsyncClient, org: Org
) -> None:
    message_id = await message_row(client, org)
    app = create_app(
        make_settings(database_url, data_dir, public_url="https://courier.clinic.test")
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:
            started = await start_upload(http, org, message_id, "evil.example")
    assert started.status_code == 201, started.text
    link = started.json()["data"]["upload-url"]
    assert link.startswith("https://courier.clinic.test/uploads/")


async def test_forged_host_gets_no_list_links(
    database_url: str, data_dir: Path, client: httpx.AsyncClient, org: Org
) -> None:
    """A list's links (self, first, next ...) are links too: a client following `next` would
    send its credentials to them. A forged Host gets relative links, never its own host."""
    for name in ("Ada", "Bo"):
        created = await client.post(
            "/v1/individuals/",
            json=doc("individuals", {"first-name": name, "last-name": "Links"}),
            headers=org.admin,
        )
        assert created.status_code == 201, created.text
    forged = await client.get(
        "/v1/individuals/?page[limit]=1", headers={**org.admin, "Host": "evil.example"}
    )
    assert forged.status_code == 200, forged.text
    assert "evil.example" not in forged.text
    links = forged.json()["links"]
    assert links["next"] == "/v1/individuals/?page[limit]=1&page[offset]=1", links
    assert all(link is None or link.startswith("/v1/individuals/?") for link in links.values())
    # Declared sub-collections page through the same document.
    hook = await client.post(
        "/v1/webhooks/",
        json=doc("webhooks", {"url": "https://127.0.0.1:9/", "event-types": ["*"]}),
        headers=org.admin,
    )
    assert hook.status_code == 201, hook.text
    deliveries = await client.get(
        f"/v1/webhooks/{hook.json()['data']['id']}/get-deliveries/",
        headers={**org.admin, "Host": "evil.example"},
    )
    assert deliveries.status_code == 200, deliveries.text
    assert "evil.example" not in deliveries.text
    await client.delete(f"/v1/webhooks/{hook.json()['data']['id']}/", headers=org.admin)
    allowed = await client.get("/v1/individuals/?page[limit]=1", headers=org.admin)
    assert allowed.json()["links"]["next"].startswith("http://courier.test/v1/individuals/?")
    app = create_app(
        make_settings(database_url, data_dir, public_url="https://courier.clinic.test/api")
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:
            public = await http.get(
                "/v1/individuals/?page[limit]=1", headers={**org.admin, "Host": "evil.example"}
            )
    assert public.status_code == 200, public.text
    assert public.json()["links"]["next"] == (
        "https://courier.clinic.test/api/v1/individuals/?page[limit]=1&page[offset]=1"
    )
