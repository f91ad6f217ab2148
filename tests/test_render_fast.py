"""The compiled renderer (courier.jsonapi.render) gives, byte for byte, the documents the
per-item pydantic path gave: ``model_validate(row).model_dump(mode="json", by_alias=True)``.

Three ways: every declared resource's get and list (and its listing actions) answered both
ways on real rows made by the factories; every registered read schema rendered both ways
from generated rows (objects and mappings, optional fields null and set, values of unexpected
runtime types); and the fields left to pydantic are exactly the ones named here.

``COURIER_RENDER_VERIFY=1`` makes every render of the process compare both ways (any test
file can be run under it)."""

from __future__ import annotations

import enum
import re
import types
import typing
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal

import httpx
import orjson
import pytest
from pydantic import BaseModel, ValidationError

from courier.app import load_domains
from courier.core.time import format_timestamp
from courier.core.types import Timestamp
from courier.jsonapi import render
from courier.jsonapi.documents import ReadAttributes
from courier.jsonapi.resource import REGISTRY, Op, ResourceSpec
from tests.conftest import Org
from tests.factories import FACTORIES

load_domains()


def _pydantic(model: type[BaseModel]) -> render.Render:
    """The path the renderer replaces, exactly as it was."""

    def old(row: Any) -> dict[str, Any]:
        return model.model_validate(row).model_dump(mode="json", by_alias=True)

    return old


def _spec_id(spec: ResourceSpec[Any]) -> str:
    return f"{spec.version}-{spec.type_name}"


def _paths(spec: ResourceSpec[Any], ident: str) -> list[str]:
    paths: list[str] = []
    if Op.GET in spec.ops:
        paths.append(f"{spec.path}{ident}/")
    if Op.LIST in spec.ops and not any(f.required for f in spec.filters):
        paths.append(spec.path + "?page[limit]=" + str(spec.page.maximum))
    for action in spec.actions:
        if action.method == "GET" and action.listing is not None:
            paths.append(action.path(spec).replace("{id}", ident))
    return paths


def _unsigned(content: bytes) -> bytes:
    """``content`` with its signed links' expiry and signature left out: two requests a
    second apart sign the same link differently."""
    content = re.sub(rb"expires=\d+", b"expires=", content)
    return re.sub(rb"signature=[^\"&]+", b"signature=", content)


@pytest.mark.parametrize(
    "spec",
    [s for s in REGISTRY if {Op.GET, Op.LIST} & s.ops or s.actions],
    ids=_spec_id,
)
async def test_declared_resources_answer_as_pydantic_did(
    client: httpx.AsyncClient, org: Org, spec: ResourceSpec[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = FACTORIES.get(spec.type_name)
    # Without a factory (resources without GET, e.g. user-multicasts): its list, empty or not.
    ident = await factory(client, org) if factory is not None else str(uuid.UUID(int=0))
    answered = 0
    for path in _paths(spec, ident):
        compiled = await client.get(path, headers=org.admin)
        with monkeypatch.context() as patch:
            patch.setattr(render, "renderer", _pydantic)
            reference = await client.get(path, headers=org.admin)
        assert compiled.status_code == reference.status_code, (path, compiled.text)
        assert _unsigned(compiled.content) == _unsigned(reference.content), path
        answered += compiled.status_code == 200
    if Op.GET in spec.ops:
        assert answered >= 1, f"{spec.type_name}: nothing rendered"


# --- every read schema, from generated rows ----------------------------------------------------


def _schemas() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for spec in REGISTRY:
        found.append(spec.read_schema)
        for action in spec.actions:
            if action.listing is not None:
                found.append(action.listing.read_schema)
    return list(dict.fromkeys(found))


class Color(enum.StrEnum):
    RED = "red"


# Strings for fields with a pattern (a time of day, a phone, a country).
_PATTERNED = ("09:30", "+15551234567", "US", "text")


def _sample(annotation: Any, variant: int, depth: int = 0) -> Any:
    """A value pydantic accepts for ``annotation``; ``variant`` picks among the shapes
    (0: the runtime types the database gives; 1: None where allowed, other zones; 2: values
    of another runtime type that pydantic converts)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        metadata = [getattr(m, "func", None) for m in args[1:]]
        if format_timestamp in metadata:
            return _time(variant)
        patterns = [getattr(m, "pattern", None) for m in args[1:]]
        for pattern in filter(None, patterns):
            return next(c for c in _PATTERNED if re.fullmatch(pattern, c))
        return _sample(args[0], variant, depth)
    if origin in (typing.Union, types.UnionType):
        others = [a for a in args if a is not type(None)]
        if variant == 1 and len(others) < len(args):
            return None
        return _sample(others[0], variant, depth)
    if origin is Literal:
        return args[-1]
    if origin is list:
        return [_sample(args[0], variant, depth + 1), _sample(args[0], 0, depth + 1)]
    if origin is dict:
        return {"k": _sample(args[1], variant, depth + 1)}
    if annotation is Any:
        return {"a": [1, 2.5, "x", None, True, {"b": {}}]} if variant != 1 else None
    if annotation is uuid.UUID:
        value = uuid.UUID(int=12345 + variant)
        return str(value).upper() if variant == 2 else value
    if annotation is str:
        return Color.RED if variant == 2 else "text"
    if annotation is bool:
        return variant != 1
    if annotation is int:
        return 7 + variant
    if annotation is float:
        return 3 if variant == 2 else 2.5
    if annotation is date:
        return date(2024, 1, 15)
    if annotation is datetime:
        return _time(variant)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        values = {
            name: _sample(_annotated(info), variant, depth + 1)
            for name, info in annotation.model_fields.items()
        }
        if variant == 1:
            return values  # a mapping, by Python name
        if annotation.model_config.get("from_attributes") or depth == 0:
            return types.SimpleNamespace(**values)
        try:
            return annotation.model_validate(values)
        except ValidationError:
            return values  # refused by a validator: the test sees both paths refuse it
    raise AssertionError(f"no sample for {annotation!r}")


def _time(variant: int) -> datetime:
    base = datetime(2024, 1, 15, 10, 0, 0, 123456, tzinfo=UTC)
    if variant == 1:
        return base.astimezone(timezone(timedelta(hours=-5)))
    return base


def _annotated(info: Any) -> Any:
    if info.metadata:
        return typing.Annotated[(info.annotation, *info.metadata)]
    return info.annotation


@pytest.mark.parametrize("schema", _schemas(), ids=lambda s: s.__name__)
@pytest.mark.parametrize("variant", [0, 1, 2])
def test_every_read_schema_renders_as_pydantic_did(schema: type[BaseModel], variant: int) -> None:
    row = _sample(schema, variant)
    try:
        expected = _pydantic(schema)(row)
    except ValidationError:
        # Rows read back are not re-validated against constraints: nothing to compare.
        pytest.skip("a generated value breaks a constraint of the schema")
    assert orjson.dumps(render.renderer(schema)(row)) == orjson.dumps(expected)


# --- the edges, on a schema of our own ---------------------------------------------------------


class Inner(BaseModel):
    id: uuid.UUID
    ratio: float


class Sample(ReadAttributes):
    created_at: Timestamp
    ended_at: Timestamp | None
    owner_id: uuid.UUID | None
    color: Color
    kind: Literal["a", "b"] = "a"
    inner: Inner | None = None
    inners: list[Inner] = []
    extended: dict[str, Any] = {}
    last_modified_time: Timestamp | None = None


def _row(**changes: Any) -> types.SimpleNamespace:
    values: dict[str, Any] = {
        "created_at": datetime(999, 3, 4, 5, 6, 7, 891000, tzinfo=UTC),
        "ended_at": None,
        "owner_id": uuid.uuid4(),
        "color": Color.RED,
        "inner": {"id": uuid.uuid4(), "ratio": 1},
        "inners": [Inner(id=uuid.uuid4(), ratio=0.5)],
        "extended": {"deep": [{"x": 1.5}]},
    }
    values.update(changes)
    return types.SimpleNamespace(**values)


def test_edges_render_as_pydantic_did() -> None:
    fast = render.renderer(Sample)
    for row in (
        _row(),
        _row(owner_id=None, inner=None, extended={}),
        _row(owner_id=str(uuid.uuid4())),  # a str where a UUID is declared: pydantic's answer
        _row(extended={"when": datetime(2024, 1, 1, tzinfo=UTC)}),  # not plain JSON
        _row(ended_at=datetime(2024, 6, 1, 23, 0, tzinfo=timezone(timedelta(hours=-3)))),
        {
            "created-at": datetime(2024, 1, 1, tzinfo=UTC),
            "ended_at": None,
            "owner_id": None,
            "color": "red",
        },
    ):
        assert orjson.dumps(fast(row)) == orjson.dumps(_pydantic(Sample)(row))
    out = fast(_row())
    assert list(out)[:3] == ["created-at", "ended-at", "owner-id"]
    assert out["created-at"] == "0999-03-04T05:06:07.891Z"
    assert out["inner"]["ratio"] == 1.0 and isinstance(out["inner"]["ratio"], float)


def test_asyncpg_uuids_take_the_fast_path() -> None:
    """PostgreSQL's rows hold asyncpg's UUID class (a subclass): rendered as the standard
    one is, without asking pydantic."""
    from asyncpg.pgproto.pgproto import UUID as PG_UUID  # type: ignore[import-not-found]

    ident = uuid.uuid4()
    theirs = PG_UUID(str(ident))
    assert type(theirs) is not uuid.UUID and isinstance(theirs, uuid.UUID)
    assert render._uuid(theirs) == str(ident)
    row = _row(owner_id=theirs)
    assert orjson.dumps(render.renderer(Sample)(row)) == orjson.dumps(_pydantic(Sample)(row))


def test_errors_stay_pydantic_errors() -> None:
    fast = render.renderer(Sample)
    with pytest.raises(ValidationError):
        fast(types.SimpleNamespace(ended_at=None))  # created_at missing
    with pytest.raises(ValidationError):
        fast(_row(created_at=datetime(2024, 1, 1)))  # naive: refused, as before


def test_fields_left_to_pydantic_are_the_known_ones() -> None:
    from courier.domains.org_preferences.schemas import OrgPreferenceRead

    # The declared resources' schemas, and those rendered by routers of their own.
    for schema in (*_schemas(), OrgPreferenceRead):
        render.renderer(schema)
    left = render.fallbacks()
    assert {name: why for name, why in left.items() if not name.startswith("Sample")} == {
        "AnnouncerArgs.recipients": "validator decorators",
        "AnnouncerArgs.individual_ids": "validator decorators",
        "AnnouncerArgs.user_ids": "validator decorators",
        "AuditEventRead.changed_fields": "validator decorators",
        "TelephonyConfig.allowed_countries": "validator decorators",
        "TelephonyConfig.allowed_prefixes": "validator decorators",
        "TelephonyConfig.blocked_prefixes": "validator decorators",
        "QuietHours.start": "validator decorators",
        "QuietHours.end": "validator decorators",
        "BusinessHours": "model validators",
        "OrgPreferenceRead.value_js": "a union of several types",
    }


# --- the channel list: rendered by hand, checked against ChannelRead ---------------------------


async def test_channel_documents_are_fixed_points_of_the_contract(
    client: httpx.AsyncClient, org: Org
) -> None:
    """The channel list builds JSON-ready attributes itself; each is exactly what ChannelRead
    renders of it (same names, order, formats), for a caller that sees everything (an API
    key acting for a member) and one whose view is redacted (an individual token)."""
    from courier.domains.messaging.schemas import ChannelRead
    from courier.jsonapi.render import check_fixed_point
    from tests.conftest import doc
    from tests.factories import individual_token, make_group, make_individual_id

    group = await make_group(client, org)
    member = await make_individual_id(client, org, **{"birth-date": "1990-02-03"})
    other = await make_individual_id(client, org)
    created = await client.post(
        "/v1/messaging-channels/",
        headers=org.staff,
        json=doc(
            "messaging-channels",
            {"individual-ids": [member, other], "individual-group-id": group, "label": "L"},
        ),
    )
    assert created.status_code == 201, created.text
    channel = created.json()["data"]["id"]
    message = await client.post(
        "/v1/messaging-messages/",
        headers=org.staff,
        json=doc(
            "messaging-messages", {"channel-id": channel, "individual-id": member, "message": "Hi"}
        ),
    )
    assert message.status_code == 201, message.text
    bookmark = await client.post(
        "/v1/messaging-bookmarks/",
        headers=org.staff,
        json=doc(
            "messaging-bookmarks",
            {
                "channel-id": channel,
                "message-id": message.json()["data"]["id"],
                "individual-id": member,
            },
        ),
    )
    assert bookmark.status_code == 201, bookmark.text
    token = {"Authorization": f"Bearer {await individual_token(client, org, other)}"}
    for headers, query in ((org.staff, f"?individual-id={member}"), (token, ""), (org.staff, "")):
        listed = await client.get("/v1/messaging-channels/" + query, headers=headers)
        assert listed.status_code == 200, listed.text
        [item] = [i for i in listed.json()["data"] if i["id"] == channel]
        attributes = item["attributes"]
        check_fixed_point(ChannelRead, attributes)
        assert attributes["individual-group"] is not None
        assert attributes["last-message"]["message"] == "Hi"
        single = await client.get(f"/v1/messaging-channels/{channel}/" + query, headers=headers)
        assert single.json()["data"]["attributes"] == attributes
    # The member's own contact facts are shown to it; the redacted view withholds the others'.
    mine = {s["id"]: s for s in attributes["subscribers"]}
    assert mine[member]["birth-date"] == "1990-02-03"
