"""Hypothesis over the generic input layer: whatever a client sends, it is a value or a clear
``ValueError`` (a 400), never another exception (a 500).

The pure parsers are fuzzed directly; then a sample of generated bodies and query values is
replayed over HTTP against the real app, where every answer must be below 500.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from courier.core.errors import ApiError
from courier.core.http import MAX_BODY_DEPTH, check_document, check_query
from courier.core.time import parse_timestamp
from courier.core.types import Extended, PhoneE164, Timestamp, TimeZoneName
from courier.jsonapi.query import DB_INT_MAX, DB_INT_MIN, parse_int, parse_time_comparisons
from tests.conftest import Org, doc

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXTREME_ZONES = [ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Etc/GMT+12"), ZoneInfo("UTC")]

# What JSON can carry: no NaN, no infinity (a client cannot send them, so neither do we).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)

# ISO-looking times, offsets and calendar edges included, plus arbitrary text.
iso_times = st.builds(
    lambda d, t, offset: f"{d.isoformat()}T{t.isoformat()}{offset}",
    st.dates(),
    st.times(),
    st.sampled_from(["Z", "+14:00", "-14:00", "+23:59", "-23:59", "+00:00", "", "+05:30"]),
) | st.text(max_size=40)


@FUZZ
@given(iso_times)
def test_timestamps_parse_or_refuse(text: str) -> None:
    try:
        value = parse_timestamp(text)
    except ValueError:
        return
    # An accepted time can be moved to any zone and written back.
    for zone in EXTREME_ZONES:
        value.astimezone(zone)
    assert TypeAdapter(Timestamp).validate_python(text) == value


@FUZZ
@given(
    st.lists(
        st.sampled_from([">", "<", ">=", "<=", "", "=>"]).flatmap(
            lambda op: iso_times.map(lambda t: op + t)
        ),
        max_size=3,
    )
)
def test_time_comparisons_parse_or_refuse(values: list[str]) -> None:
    with contextlib.suppress(ValueError):
        parse_time_comparisons(values)


@FUZZ
@given(st.text(max_size=30) | st.integers().map(str) | st.integers(min_value=2**60).map(str))
def test_integers_stay_in_what_the_database_holds(text: str) -> None:
    try:
        value = parse_int(0, None)(text)
    except ValueError:
        return
    assert 0 <= value <= DB_INT_MAX
    try:
        signed = parse_int()(text)
    except ValueError:
        return
    assert DB_INT_MIN <= signed <= DB_INT_MAX


@FUZZ
@given(json_values)
def test_free_json_is_an_object_within_bounds_or_refused(value: Any) -> None:
    try:
        accepted = TypeAdapter(Extended).validate_python(value)
    except ValidationError:
        return
    assert isinstance(accepted, dict)
    json.dumps(accepted)


@FUZZ
@given(st.text(max_size=20))
def test_phones_and_zones_parse_or_refuse(text: str) -> None:
    for kind in (PhoneE164, TimeZoneName):
        with contextlib.suppress(ValidationError):
            TypeAdapter(kind).validate_python(text)


@FUZZ
@given(json_values, st.integers(min_value=0, max_value=MAX_BODY_DEPTH + 5))
def test_documents_are_checked_without_recursion(value: Any, depth: int) -> None:
    document: Any = {"data": value}
    for _ in range(depth):
        document = {"a": document}
    try:
        check_document(document)
    except ApiError as error:
        assert error.status == 400


@FUZZ
@given(st.dictionaries(st.text(max_size=10), st.lists(st.text(max_size=10), max_size=2)))
def test_queries_are_checked(query: dict[str, list[str]]) -> None:
    try:
        check_query(query)
    except ApiError as error:
        assert error.status == 400
        assert any("\x00" in k or any("\x00" in v for v in vs) for k, vs in query.items())


def generated(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples drawn by hypothesis, to replay over HTTP (async tests cannot be
    @given)."""
    drawn: list[Any] = []

    @settings(max_examples=count, deadline=None, database=None)
    @given(strategy)
    def collect(example: Any) -> None:
        drawn.append(example)

    collect()
    return drawn


async def test_generated_inputs_never_500_over_http(client: httpx.AsyncClient, org: Org) -> None:
    answers: list[int] = []
    for attributes in generated(
        st.fixed_dictionaries(
            {"first-name": st.text(max_size=12), "last-name": st.text(min_size=1, max_size=12)},
            optional={
                "extended": json_values,
                "birth-date": st.text(max_size=12),
                "phone": st.text(max_size=16),
                "tz": st.text(max_size=16),
                "last-sync-time": iso_times,
            },
        ),
        40,
    ):
        response = await client.post(
            "/v1/individuals/", json=doc("individuals", attributes), headers=org.admin
        )
        answers.append(response.status_code)
        assert response.status_code < 500, (attributes, response.text)
    for value in generated(iso_times | st.text(max_size=20), 30):
        response = await client.get(
            "/v1/audit-events/",
            params={"filter[cmp-occurred-at]": f">={value}", "page[offset]": value},
            headers=org.admin,
        )
        assert response.status_code < 500, (value, response.text)
    assert 201 in answers or 400 in answers
