"""Messaging plugins: CRUD and name rules, enable/disable, expanding templates and links for a
channel with its real values, the sandbox, visibility and roles."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from courier.core.time import utcnow
from courier.models.messaging_plugin import MessagingPlugin
from tests.conftest import Org, doc
from tests.factories import individual_token, make_individual_id

PLUGINS = "/v1/messaging-plugins/"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_plugin(
    client: httpx.AsyncClient,
    org: Org,
    template: str = "Hi {{ individual.first_name }}",
    *,
    name: str | None = None,
    type_name: str = "template",
    args: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response = await client.post(
        PLUGINS,
        headers=org.admin,
        json=doc(
            "messaging-plugins",
            {
                "name": name or f"p{uuid.uuid4().hex[:12]}",
                "type": type_name,
                "args": args if args is not None else {"template": template},
            },
        ),
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def create_group(client: httpx.AsyncClient, org: Org, name: str, members: list[str]) -> str:
    response = await client.post(
        "/v1/individual-groups/",
        headers=org.admin,
        json=doc("individual-groups", {"name": name, "individual-ids": members}),
    )
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


async def create_channel(client: httpx.AsyncClient, org: Org, **attributes: Any) -> str:
    response = await client.post(
        "/v1/messaging-channels/", headers=org.staff, json=doc("messaging-channels", attributes)
    )
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


async def expand(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    plugin_id: str,
    body: dict[str, Any],
    query: str = "",
) -> httpx.Response:
    return await client.post(f"{PLUGINS}{plugin_id}/expand/{query}", headers=headers, json=body)


async def test_crud_names_types_and_filters(client: httpx.AsyncClient, org: Org) -> None:
    name = f"hello{uuid.uuid4().hex[:6]}"
    created = await create_plugin(client, org, "Hello {{ individual.first_name }}!", name=name)
    attributes = created["attributes"]
    assert attributes["name"] == name
    assert attributes["type"] == "template"
    assert attributes["args"] == {"template": "Hello {{ individual.first_name }}!"}
    assert attributes["enabled"] is True
    assert attributes["organization-id"] == org.id
    assert attributes["created-by"] == org.admin_key_id
    assert attributes["last-modified-by"] == org.admin_key_id
    assert attributes["created-at"].endswith("Z")
    ident = created["id"]

    shown = await client.get(f"{PLUGINS}{ident}/", headers=org.readonly)
    assert shown.status_code == 200, shown.text
    assert shown.json()["data"]["attributes"] == attributes

    link = await create_plugin(
        client, org, type_name="link", args={"url": "https://portal.clinic.test/", "text": "Portal"}
    )
    by_name = await client.get(f"{PLUGINS}?filter[name]={name}", headers=org.readonly)
    assert [item["id"] for item in by_name.json()["data"]] == [ident]
    by_type = await client.get(
        f"{PLUGINS}?filter[type]=link&organization-id={org.id}", headers=org.readonly
    )
    assert [item["id"] for item in by_type.json()["data"]] == [link["id"]]
    assert (await client.get(f"{PLUGINS}?filter[name]=A-B", headers=org.admin)).status_code == 400

    renamed = f"bye{uuid.uuid4().hex[:6]}"
    patched = await client.patch(
        f"{PLUGINS}{ident}/",
        headers=org.admin,
        json=doc(
            "messaging-plugins",
            {"name": renamed, "args": {"template": "Bye {{ individual.last_name }}"}},
            ident,
        ),
    )
    assert patched.status_code == 200, patched.text
    after = patched.json()["data"]["attributes"]
    assert after["name"] == renamed
    assert after["args"] == {"template": "Bye {{ individual.last_name }}"}
    assert after["last-modified-at"] >= attributes["last-modified-at"]

    # A new type must accept the plugin's args: a template's args are no link's.
    retyped = await client.patch(
        f"{PLUGINS}{ident}/",
        headers=org.admin,
        json=doc("messaging-plugins", {"type": "link"}, ident),
    )
    assert retyped.status_code == 400
    assert retyped.json()["errors"][0]["source"]["pointer"].startswith("/data/attributes/args")
    nulled = await client.patch(
        f"{PLUGINS}{ident}/",
        headers=org.admin,
        json=doc("messaging-plugins", {"name": None}, ident),
    )
    assert nulled.status_code == 400
    assert nulled.json()["errors"][0]["source"]["pointer"] == "/data/attributes/name"


@pytest.mark.parametrize(
    "name", ["abc", "a" * 16, "Hello1", "with-dash", "spa ce", "émile1", "", "under_score"]
)
async def test_names_outside_the_pattern_are_refused(
    client: httpx.AsyncClient, org: Org, name: str
) -> None:
    response = await client.post(
        PLUGINS,
        headers=org.admin,
        json=doc(
            "messaging-plugins", {"name": name, "type": "template", "args": {"template": "x"}}
        ),
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/name"


async def test_names_are_unique_per_organization(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    name = f"dup{uuid.uuid4().hex[:8]}"
    first = await create_plugin(client, org, name=name)
    again = await client.post(
        PLUGINS,
        headers=org.admin,
        json=doc(
            "messaging-plugins", {"name": name, "type": "template", "args": {"template": "y"}}
        ),
    )
    assert again.status_code == 409, again.text
    assert again.json()["errors"][0]["code"] == "duplicate-name"
    # Another organization may use the same name.
    await create_plugin(client, other_org, name=name)
    second = await create_plugin(client, org)
    renamed = await client.patch(
        f"{PLUGINS}{second['id']}/",
        headers=org.admin,
        json=doc("messaging-plugins", {"name": name}, second["id"]),
    )
    assert renamed.status_code == 409
    # Keeping its own name is no conflict.
    same = await client.patch(
        f"{PLUGINS}{first['id']}/",
        headers=org.admin,
        json=doc("messaging-plugins", {"name": name}, first["id"]),
    )
    assert same.status_code == 200, same.text


async def test_unknown_types_and_bad_args_are_refused(client: httpx.AsyncClient, org: Org) -> None:
    def body(type_name: str, args: Any) -> dict[str, Any]:
        return doc("messaging-plugins", {"name": "badargs1", "type": type_name, "args": args})

    unknown = await client.post(PLUGINS, headers=org.admin, json=body("macro", {}))
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["source"]["pointer"] == "/data/attributes/type"
    for type_name, args, pointer in [
        ("template", {}, "/data/attributes/args/template"),
        ("template", {"template": ""}, "/data/attributes/args/template"),
        ("template", {"template": "x", "extra": 1}, "/data/attributes/args/extra"),
        ("link", {"url": "javascript:alert(1)"}, "/data/attributes/args/url"),
        ("link", {"text": "Portal"}, "/data/attributes/args/url"),
    ]:
        response = await client.post(PLUGINS, headers=org.admin, json=body(type_name, args))
        assert response.status_code == 400, (args, response.text)
        error = response.json()["errors"][0]
        assert error["source"]["pointer"] == pointer, error
        assert "args." in error["detail"]


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{{ ''.__class__.__mro__ }}", "__"),
        ("{{ ''['__class__'] }}", "__class__"),
        ("{{ channel.__class__.__init__.__globals__ }}", "__"),
        ("{{ channel.name.upper() }}", "unsafe"),
        ("{{ '{0.__class__}'.format(channel) }}", "unsafe"),
        ("{{ '%s' % channel }}", "formatting"),
        ("{{ 'x' * 100000 }}", "longer"),
        ("{{ 10 ** 100000 }}", "power"),
        ("{{ channel.nmae }}", "nmae"),
        ("{{ config }}", "unknown variable"),
        ("{{ range(10) }}", "unknown variable"),
        ("{% for c in 'abc' %}{{ c }}{% endfor %}", "for"),
        ("{% set x = 1 %}{{ x }}", "set"),
        ("{% macro m() %}x{% endmacro %}", "macro"),
        ("{% include 'secrets' %}", "include"),
        ("{{ channel.name|center(100000000) }}", "center"),
        ("Hello {{ individual.first_name ", "line 1"),
        ("{% if %}", "not a valid template"),
    ],
)
async def test_templates_are_sandboxed_and_checked_at_create(
    client: httpx.AsyncClient, org: Org, template: str, words: str
) -> None:
    response = await client.post(
        PLUGINS,
        headers=org.admin,
        json=doc(
            "messaging-plugins",
            {"name": "sandbox1", "type": "template", "args": {"template": template}},
        ),
    )
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["source"]["pointer"] == "/data/attributes/args/template"
    assert words in error["detail"], error["detail"]


async def test_a_refused_patch_leaves_the_plugin_as_it_was(
    client: httpx.AsyncClient, org: Org
) -> None:
    plugin = await create_plugin(client, org, "Fine {{ channel.name }}")
    response = await client.patch(
        f"{PLUGINS}{plugin['id']}/",
        headers=org.admin,
        json=doc(
            "messaging-plugins",
            {"args": {"template": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}},
            plugin["id"],
        ),
    )
    assert response.status_code == 400
    shown = await client.get(f"{PLUGINS}{plugin['id']}/", headers=org.admin)
    assert shown.json()["data"]["attributes"]["args"] == {"template": "Fine {{ channel.name }}"}


async def test_expand_renders_the_channel_group_individual_and_organization(
    client: httpx.AsyncClient, org: Org
) -> None:
    alice = await make_individual_id(
        client, org, **{"first-name": "Alice", "last-name": "Smith", "preferred-name": "Ali"}
    )
    bob = await make_individual_id(client, org, **{"first-name": "Bob", "last-name": "Jones"})
    carol = await make_individual_id(client, org, **{"first-name": "Carol", "last-name": "Ng"})
    group = await create_group(client, org, "Cardiology Team", [alice, bob])
    channel = await create_channel(
        client, org, **{"individual-group-id": group, "individual-ids": [carol], "label": "Urgent"}
    )
    template = (
        "{{ channel.name }}|{{ channel.label }}|{{ channel.subscriber_count }}|"
        "{{ group.name }}|{{ group.member_count }}|{{ individual.first_name }}|"
        "{{ individual.last_name }}|{{ individual.preferred_name or individual.first_name }}|"
        "{{ organization.name }}|{{ organization.timezone }}|{{ now.strftime('%Z') }}|"
        "{{ channel.id == channel['id'] }}"
    )
    plugin = await create_plugin(client, org, template)
    organization = (await client.get(f"/v1/organizations/{org.id}/", headers=org.admin)).json()
    org_name = organization["data"]["attributes"]["name"]

    as_alice = await expand(
        client,
        bearer(await individual_token(client, org, alice)),
        plugin["id"],
        {"channel-id": channel},
    )
    assert as_alice.status_code == 201, as_alice.text
    parts = as_alice.json()["message"].split("|")
    assert parts[:10] == [
        "Cardiology Team",
        "Urgent",
        "3",
        "Cardiology Team",
        "2",
        "Alice",
        "Smith",
        "Ali",
        org_name,
        "America/New_York",
    ]
    assert parts[10] in {"EST", "EDT"}  # now, in the organization's time zone
    assert parts[11] == "True"

    # A key names the individual in the body or the query; Bob has no preferred name.
    as_bob = await expand(
        client, org.staff, plugin["id"], {"channel-id": channel, "individual-id": bob}
    )
    assert as_bob.status_code == 201, as_bob.text
    assert as_bob.json()["message"].split("|")[5:8] == ["Bob", "Jones", "Bob"]
    by_query = await expand(
        client, org.admin, plugin["id"], {"channel-id": channel}, f"?individual-id={carol}"
    )
    assert by_query.json()["message"].split("|")[5:8] == ["Carol", "Ng", "Carol"]
    # Without an individual, its values are empty.
    anonymous = await expand(client, org.staff, plugin["id"], {"channel-id": channel})
    assert anonymous.status_code == 201, anonymous.text
    assert anonymous.json()["message"].split("|")[5:8] == ["", "", ""]


async def test_a_channel_without_group_renders_group_values_as_nothing(
    client: httpx.AsyncClient, org: Org
) -> None:
    person = await make_individual_id(client, org, **{"first-name": "Dana"})
    channel = await create_channel(
        client, org, **{"individual-ids": [person], "name": "Front desk"}
    )
    plugin = await create_plugin(
        client,
        org,
        "[{{ group.name }}]{% if group %}in a group{% else %}no group{% endif %} "
        "{{ channel.name|upper }} {{ individual.first_name|default('friend') }}",
    )
    response = await expand(client, org.staff, plugin["id"], {"channel-id": channel})
    assert response.status_code == 201, response.text
    assert response.json()["message"] == "[]no group FRONT DESK friend"
    mine = await expand(
        client, org.staff, plugin["id"], {"channel-id": channel, "individual-id": person}
    )
    assert mine.json()["message"] == "[]no group FRONT DESK Dana"


async def test_link_plugins_render_a_fixed_line(client: httpx.AsyncClient, org: Org) -> None:
    person = await make_individual_id(client, org)
    channel = await create_channel(client, org, **{"individual-ids": [person]})
    plugin = await create_plugin(
        client,
        org,
        type_name="link",
        args={"url": "https://portal.clinic.test/visits", "text": "Portal"},
    )
    response = await expand(client, org.staff, plugin["id"], {"channel-id": channel})
    assert response.status_code == 201, response.text
    assert response.json() == {"message": "Portal: https://portal.clinic.test/visits"}


async def test_the_sandbox_holds_at_expand_time_too(
    app: Any, client: httpx.AsyncClient, org: Org
) -> None:
    """Plugins written before a rule existed (here: straight into the database) still cannot
    reach internals or render oversized text when expanded."""
    person = await make_individual_id(client, org)
    channel = await create_channel(client, org, **{"individual-ids": [person]})
    idents = []
    async with app.state.database.sessionmaker() as session:
        for index, template in enumerate(
            ["{{ ''.__class__.__mro__ }}", "{{ 'x' * 9000 }}{{ 'y' * 9000 }}"]
        ):
            plugin = MessagingPlugin(
                id=uuid.uuid4(),
                organization_id=uuid.UUID(org.id),
                name=f"legacy{index}{uuid.uuid4().hex[:6]}",
                type="template",
                args={"template": template},
                enabled=True,
                created_at=utcnow(),
                last_modified_at=utcnow(),
            )
            session.add(plugin)
            idents.append(str(plugin.id))
        await session.commit()
    unsafe = await expand(client, org.staff, idents[0], {"channel-id": channel})
    assert unsafe.status_code == 400, unsafe.text
    assert unsafe.json()["errors"][0]["code"] == "plugin-render-error"
    assert "unsafe" in unsafe.json()["errors"][0]["detail"]
    assert "object at 0x" not in unsafe.text
    too_long = await expand(client, org.staff, idents[1], {"channel-id": channel})
    assert too_long.status_code == 400
    assert "10000 characters" in too_long.json()["errors"][0]["detail"]


async def test_enable_and_disable_are_idempotent_and_disabled_plugins_do_not_expand(
    client: httpx.AsyncClient, org: Org
) -> None:
    person = await make_individual_id(client, org)
    channel = await create_channel(client, org, **{"individual-ids": [person]})
    plugin = await create_plugin(client, org, "ok")
    ident = plugin["id"]
    first = await client.post(f"{PLUGINS}{ident}/disable/", headers=org.admin, json={})
    assert first.status_code == 201, first.text
    assert first.json()["data"]["attributes"]["enabled"] is False
    second = await client.post(f"{PLUGINS}{ident}/disable/", headers=org.admin)
    assert second.status_code == 201
    assert second.json()["data"]["attributes"] == first.json()["data"]["attributes"]
    refused = await expand(client, org.staff, ident, {"channel-id": channel})
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["code"] == "plugin-disabled"
    listed = await client.get(
        f"{PLUGINS}?filter[name]={plugin['attributes']['name']}", headers=org.admin
    )
    assert listed.json()["data"][0]["attributes"]["enabled"] is False
    enabled = await client.post(f"{PLUGINS}{ident}/enable/", headers=org.admin, json={})
    assert enabled.status_code == 201
    assert enabled.json()["data"]["attributes"]["enabled"] is True
    again = await client.post(f"{PLUGINS}{ident}/enable/", headers=org.admin, json={})
    assert again.json()["data"]["attributes"] == enabled.json()["data"]["attributes"]
    assert (await expand(client, org.staff, ident, {"channel-id": channel})).json() == {
        "message": "ok"
    }
    bad_body = await client.post(f"{PLUGINS}{ident}/enable/", headers=org.admin, json={"x": 1})
    assert bad_body.status_code == 400
    # Each switch is one audit row; the repeats changed nothing and recorded nothing.
    audited = await client.get(
        "/v1/audit-events/", params={"filter[resource-id]": ident}, headers=org.admin
    )
    changes = [
        (event["attributes"]["action"], event["attributes"]["changed-fields"])
        for event in audited.json()["data"]
    ]
    assert sorted(changes) == sorted(
        [("created", ["args", "name", "type"]), ("updated", ["enabled"]), ("updated", ["enabled"])]
    )
    # The body may come wrapped in a JSON:API document, as every action's may.
    wrapped = await expand(
        client, org.staff, ident, doc("messaging-plugins", {"channel-id": channel})
    )
    assert wrapped.status_code == 201, wrapped.text
    assert wrapped.json() == {"message": "ok"}


async def test_expand_needs_a_channel_the_caller_can_see(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    member = await make_individual_id(client, org)
    outsider = await make_individual_id(client, org)
    channel = await create_channel(client, org, **{"individual-ids": [member]})
    plugin = await create_plugin(client, org, "Hello {{ individual.first_name }}")
    ident = plugin["id"]
    outsider_token = bearer(await individual_token(client, org, outsider))
    member_token = bearer(await individual_token(client, org, member))

    # An individual token sees only its own channels: another's is 404, like a missing one.
    hidden = await expand(client, outsider_token, ident, {"channel-id": channel})
    assert hidden.status_code == 404
    missing = await expand(client, member_token, ident, {"channel-id": str(uuid.uuid4())})
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["source"]["pointer"] == "/channel-id"
    # It acts only as itself.
    impostor = await expand(
        client, member_token, ident, {"channel-id": channel, "individual-id": outsider}
    )
    assert impostor.status_code == 403
    # A key may name only a subscriber of the channel, and an individual of its organization.
    not_subscribed = await expand(
        client, org.staff, ident, {"channel-id": channel, "individual-id": outsider}
    )
    assert not_subscribed.status_code == 422
    stranger = await expand(
        client, org.staff, ident, {"channel-id": channel, "individual-id": str(uuid.uuid4())}
    )
    assert stranger.status_code == 404
    assert stranger.json()["errors"][0]["source"]["pointer"] == "/individual-id"
    conflicting = await expand(
        client,
        org.staff,
        ident,
        {"channel-id": channel, "individual-id": member},
        f"?individual-id={outsider}",
    )
    assert conflicting.status_code == 400
    malformed = await expand(client, org.staff, ident, {"channel-id": "nope"})
    assert malformed.status_code == 400
    assert (await expand(client, org.staff, ident, {})).status_code == 400

    # Another organization's plugin and channel are 404, both ways round.
    foreign_member = await make_individual_id(client, other_org)
    foreign_channel = await create_channel(
        client, other_org, **{"individual-ids": [foreign_member]}
    )
    assert (
        await expand(client, other_org.staff, ident, {"channel-id": foreign_channel})
    ).status_code == 404
    assert (
        await expand(client, org.staff, ident, {"channel-id": foreign_channel})
    ).status_code == 404
    assert (await client.get(f"{PLUGINS}{ident}/", headers=other_org.admin)).status_code == 404
    assert (
        await client.post(f"{PLUGINS}{ident}/disable/", headers=other_org.admin)
    ).status_code == 404
    assert (
        await expand(client, org.staff, "not-a-uuid", {"channel-id": channel})
    ).status_code == 404

    own = await expand(client, member_token, ident, {"channel-id": channel})
    assert own.status_code == 201, own.text
    assert own.json()["message"] == "Hello Sam"


async def test_roles(client: httpx.AsyncClient, org: Org) -> None:
    member = await make_individual_id(client, org)
    channel = await create_channel(client, org, **{"individual-ids": [member]})
    plugin = await create_plugin(client, org, "x")
    ident = plugin["id"]
    token = bearer(await individual_token(client, org, member))
    body = doc(
        "messaging-plugins", {"name": "rolecheck1", "type": "template", "args": {"template": "x"}}
    )
    assert (await client.post(PLUGINS, headers=org.staff, json=body)).status_code == 403
    assert (await client.post(PLUGINS, headers=org.readonly, json=body)).status_code == 403
    patch = doc("messaging-plugins", {"name": "rolecheck2"}, ident)
    assert (
        await client.patch(f"{PLUGINS}{ident}/", headers=org.staff, json=patch)
    ).status_code == 403
    for action in ("enable", "disable"):
        for headers in (org.staff, org.readonly, token):
            response = await client.post(f"{PLUGINS}{ident}/{action}/", headers=headers, json={})
            assert response.status_code == 403, (action, response.text)
    for headers in (org.readonly, org.staff, org.admin):
        assert (await client.get(PLUGINS, headers=headers)).status_code == 200
        assert (await client.get(f"{PLUGINS}{ident}/", headers=headers)).status_code == 200
    assert (await client.get(PLUGINS, headers=token)).status_code == 403
    assert (await client.get(f"{PLUGINS}{ident}/", headers=token)).status_code == 403
    readonly = await expand(client, org.readonly, ident, {"channel-id": channel})
    assert readonly.status_code == 403
    for headers in (org.staff, org.admin, token):
        assert (await expand(client, headers, ident, {"channel-id": channel})).status_code == 201
