"""The domains' own ``present()`` functions render through the compiled renderer
(courier.jsonapi.render.render_rows) and answer, byte for byte, what the per-item pydantic
path (``model_validate(values).model_dump(mode="json", by_alias=True)``) answered.

Each resource below is made by its factory, then its get and list are asked twice: once as
served, once with the renderer swapped for the pydantic path; the bodies must be the same
bytes and hold the made item (so a comparison of two empty lists proves nothing). The
sniffer logs and the organization preferences (a listing action and a router of their own)
are asked the same way. ``COURIER_RENDER_VERIFY=1`` additionally compares every render of
these domains' test files both ways."""

from __future__ import annotations

import inspect
from typing import Any

import httpx
import pytest

from courier.app import load_domains
from courier.jsonapi import render
from courier.jsonapi.resource import REGISTRY, Op, ResourceSpec
from tests.conftest import Org
from tests.factories import FACTORIES
from tests.test_render_fast import _pydantic

load_domains()

# The declared resources whose service renders in its own present() (switched to the
# compiled renderer), by type name. Left on pydantic, as slower through the renderer (their
# values are dicts with nested documents or free JSON, which pydantic-core validates and dumps
# faster than Python can): individual groups, bookmarks, bulk messages, messaging operations,
# responders, aggregation requests (bench/README.md).
SWITCHED = (
    "ask-reminders",
    "appointments",
    "user-emails",
    "replicators",
    "system-purges",
    "sniffers",
    "text-number-info",
    "video-channels",
    "video-participants",
    "video-compositions",
    "voice-tasks",
    "voice-queue-entries",
    "voice-queue-agents",
    "voice-recordings",
)


def _spec(type_name: str) -> ResourceSpec[Any]:
    return next(s for s in REGISTRY if s.type_name == type_name and s.ops)


async def _both_ways(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], patch: pytest.MonkeyPatch
) -> bytes:
    compiled = await client.get(path, headers=headers)
    with patch.context() as swapped:
        swapped.setattr(render, "renderer", _pydantic)
        reference = await client.get(path, headers=headers)
    assert compiled.status_code == reference.status_code == 200, (path, compiled.text)
    assert compiled.content == reference.content, path
    return compiled.content


@pytest.mark.parametrize("type_name", SWITCHED)
async def test_switched_presents_answer_as_pydantic_did(
    client: httpx.AsyncClient, org: Org, type_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(type_name)
    ident = await FACTORIES[type_name](client, org)
    got = await _both_ways(client, f"{spec.path}{ident}/", org.admin, monkeypatch)
    assert ident.encode() in got
    if Op.LIST in spec.ops and not any(f.required for f in spec.filters):
        listed = await _both_ways(client, spec.path + "?page[limit]=100", org.admin, monkeypatch)
        assert ident.encode() in listed


def test_switched_presents_build_no_model_per_item() -> None:
    """No switched present() validates and dumps a read schema itself any more."""
    for type_name in SWITCHED:
        present = type(_spec(type_name).service).present
        assert "model_dump" not in inspect.getsource(present), type_name


async def test_text_number_info_keeps_its_line_type_last(
    client: httpx.AsyncClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    ident = await FACTORIES["text-number-info"](client, org)
    got = await client.get(f"/v1/text-number-info/{ident}/", headers=org.admin)
    assert got.status_code == 200, got.text
    assert list(got.json()["data"]["attributes"])[-1] == "type"


async def test_sniffer_logs_answer_as_pydantic_did(
    client: httpx.AsyncClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    sniffer = await FACTORIES["sniffers"](client, org)
    recorded = await client.get("/v1/api-keys/?page[limit]=1", headers=org.admin)
    assert recorded.status_code == 200
    got = await _both_ways(client, f"/v1/sniffers/{sniffer}/get-logs/", org.admin, monkeypatch)
    assert b"/v1/api-keys/" in got


async def test_org_preferences_answer_as_pydantic_did(
    client: httpx.AsyncClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = await _both_ways(client, "/v1/org-preferences/", org.admin, monkeypatch)
    assert b'"type":"org-preferences"' in got
