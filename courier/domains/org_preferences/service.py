"""Organization preferences: a fixed catalog of typed settings, each with a default.

Only the preferences an organization set are stored; the others are served from the catalog
with ``explicit: false``. Other domains read a preference with :func:`get_preference`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, overload

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.errors import invalid_attribute, not_found
from courier.core.time import utcnow
from courier.domains.org_preferences import repository as repo
from courier.jsonapi.changes import change, record_changes
from courier.jsonapi.context import Context
from courier.jsonapi.query import parse_bool
from courier.models.org_preference import OrgPreference

if TYPE_CHECKING:
    from courier.domains.org_preferences.schemas import OrgPreferenceSet

PreferenceValue = str | bool | int
PreferenceName = Literal[
    "alexa-read-message-text",
    "console-idle-timeout-seconds",
    "default-channel-title",
    "email-unsubscribe-url",
    "group-provider-ack",
    "initial-sms-message",
    "locale",
    "sms-message-link",
    "sms-phi-safe",
]
TextPreferenceName = Literal[
    "default-channel-title",
    "email-unsubscribe-url",
    "initial-sms-message",
    "locale",
    "sms-message-link",
]
BoolPreferenceName = Literal["alexa-read-message-text", "group-provider-ack", "sms-phi-safe"]
IntPreferenceName = Literal["console-idle-timeout-seconds"]

TYPE_NAME = "org-preferences"


@dataclass(frozen=True)
class Preference:
    """One known preference: its value type, default and bounds."""

    name: str
    kind: type[str] | type[bool] | type[int]
    default: PreferenceValue
    description: str
    max_length: int = 0
    bounds: tuple[int, int] = (0, 0)  # an integer preference: its least and greatest value

    def accepts(self, value: object) -> bool:
        # bool is checked exactly: a JSON string "true" is not a boolean preference value (nor
        # is true an integer one).
        if self.kind is bool:
            return isinstance(value, bool)
        if self.kind is int:
            low, high = self.bounds
            return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return isinstance(value, str) and bool(value.strip()) and len(value) <= self.max_length

    def problem(self) -> str:
        if self.kind is bool:
            return "must be a boolean"
        if self.kind is int:
            return f"must be an integer from {self.bounds[0]} to {self.bounds[1]}"
        return f"must be a non-empty string of at most {self.max_length} characters"

    def from_text(self, text: str) -> PreferenceValue:
        if self.kind is bool:
            return parse_bool(text)
        if self.kind is int:
            try:
                return int(text.strip(), 10)
            except ValueError:
                raise ValueError(f"is not an integer: {text!r}") from None
        return text

    @staticmethod
    def as_text(value: PreferenceValue) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


PREFERENCES: dict[str, Preference] = {
    p.name: p
    for p in (
        Preference(
            "default-channel-title",
            str,
            "Care team",
            "Title given to a new channel when its creator names none",
            max_length=255,
        ),
        Preference(
            "console-idle-timeout-seconds",
            int,
            600,
            "Seconds without activity after which the organization's web-console sessions lock "
            "(60 to 43200); while unset, the installation's COURIER_CONSOLE_IDLE_TIMEOUT_SECONDS "
            "(600 unless configured) applies (docs/CONSOLE.md)",
            bounds=(60, 43200),
        ),
        Preference(
            "group-provider-ack",
            bool,
            False,
            "Whether one provider acknowledging a message acknowledges it for the whole group",
        ),
        Preference(
            "initial-sms-message",
            str,
            "You have a new message from your care team. Reply to this text to answer, "
            "or reply STOP to stop receiving texts.",
            "First text sent to a patient who is reached by SMS",
            max_length=1600,  # ten concatenated SMS segments
        ),
        Preference(
            "alexa-read-message-text",
            bool,
            False,
            "Whether the Alexa skill reads the text of a patient's new messages aloud; false: "
            "it says only how many there are and from whom (docs/ALEXA.md)",
        ),
        Preference(
            "email-unsubscribe-url",
            str,
            "",
            "Where a patient unsubscribes from the organization's emails: sent as their "
            "List-Unsubscribe header (https: or mailto:); empty: no header",
            max_length=2000,
        ),
        Preference(
            "locale",
            str,
            "en",
            "The organization's language (a BCP 47 tag: en, es-MX): notification templates "
            "fall back to its variant when a recipient's locale has none (docs/TEMPLATES.md)",
            max_length=35,
        ),
        Preference(
            "sms-phi-safe",
            bool,
            False,
            "Whether the texts of providers' posts in a channel's SMS path say only that there "
            "is a new message, with sms-message-link, instead of the message itself (a channel's "
            "set-sms phi-safe overrides it)",
        ),
        Preference(
            "sms-message-link",
            str,
            "",
            "The link in a PHI-safe text of a channel's SMS path, where the patient reads the "
            "message (e.g. the patient app); {channel-id} is replaced by the channel's id. "
            "Empty: the text asks the patient to open the app",
            max_length=500,
        ),
    )
}


def preference_id(organization_id: uuid.UUID, name: str) -> uuid.UUID:
    """The one id of a preference of an organization, the same before and after it is set."""
    return uuid.uuid5(organization_id, name)


@dataclass(frozen=True)
class PreferenceState:
    """A preference as the API shows it: set explicitly or still its default."""

    id: uuid.UUID
    name: str
    value: str
    value_js: PreferenceValue
    organization_id: uuid.UUID
    created_at: datetime
    explicit: bool


def _state(
    organization_id: uuid.UUID,
    preference: Preference,
    value: PreferenceValue,
    created_at: datetime,
    explicit: bool,
) -> PreferenceState:
    return PreferenceState(
        id=preference_id(organization_id, preference.name),
        name=preference.name,
        value=Preference.as_text(value),
        value_js=value,
        organization_id=organization_id,
        created_at=created_at,
        explicit=explicit,
    )


def _stored_value(preference: Preference, stored: Any) -> PreferenceValue | None:
    # A stored value that no longer fits the catalog (its type or bounds changed) is ignored
    # rather than handed to callers that rely on the declared type.
    return stored if preference.accepts(stored) else None


@overload
async def get_preference(
    session: AsyncSession, organization_id: uuid.UUID, name: BoolPreferenceName
) -> bool: ...


@overload
async def get_preference(
    session: AsyncSession, organization_id: uuid.UUID, name: TextPreferenceName
) -> str: ...


@overload
async def get_preference(
    session: AsyncSession, organization_id: uuid.UUID, name: IntPreferenceName
) -> int: ...


async def get_preference(
    session: AsyncSession, organization_id: uuid.UUID, name: PreferenceName
) -> PreferenceValue:
    """The organization's value of a preference, or its default when it never set one."""
    preference = PREFERENCES.get(name)
    if preference is None:
        raise ValueError(f"unknown preference {name!r}")
    stored = await repo.stored_value(session, organization_id, name)
    value = _stored_value(preference, stored)
    return preference.default if value is None else value


async def get_preferences(
    session: AsyncSession, organization_id: uuid.UUID, names: Sequence[PreferenceName]
) -> dict[str, PreferenceValue]:
    """The organization's values of several preferences (each its default when it never set
    one), by name, in one statement."""
    for name in names:
        if name not in PREFERENCES:
            raise ValueError(f"unknown preference {name!r}")
    stored = await repo.stored_values(session, organization_id, names)
    values: dict[str, PreferenceValue] = {}
    for name in names:
        preference = PREFERENCES[name]
        value = _stored_value(preference, stored.get(name))
        values[name] = preference.default if value is None else value
    return values


def check_organization(ctx: Context, requested: uuid.UUID | None) -> uuid.UUID:
    """The caller's organization; naming any other one finds nothing (404, never 403)."""
    own = ctx.organization_id
    if requested is not None and requested != own:
        raise not_found("organization")
    return own


async def list_preferences(
    ctx: Context, organization_id: uuid.UUID, name: str | None = None
) -> list[PreferenceState]:
    """Every known preference of the organization (or the named one), defaults included."""
    stored = await repo.stored(ctx.session, organization_id, name)
    founded = await repo.organization_created_at(ctx.session, organization_id)
    states: list[PreferenceState] = []
    for preference in sorted(PREFERENCES.values(), key=lambda p: p.name):
        if name is not None and preference.name != name:
            continue
        row = stored.get(preference.name)
        value = _stored_value(preference, row.value) if row is not None else None
        if row is not None and value is not None:
            states.append(_state(organization_id, preference, value, row.created_at, True))
        else:
            states.append(_state(organization_id, preference, preference.default, founded, False))
    return states


def _requested_value(preference: Preference, attrs: OrgPreferenceSet) -> PreferenceValue:
    given = attrs.model_fields_set
    typed: PreferenceValue | None = None
    if "value_js" in given:
        if not preference.accepts(attrs.value_js):
            raise invalid_attribute("value-js", f"of {preference.name} {preference.problem()}")
        typed = attrs.value_js
    if "value" in given and attrs.value is not None:
        try:
            from_text = preference.from_text(attrs.value)
        except ValueError as exc:
            raise invalid_attribute("value", f"of {preference.name} {exc}") from exc
        if not preference.accepts(from_text):
            raise invalid_attribute("value", f"of {preference.name} {preference.problem()}")
        if typed is not None and typed != from_text:
            raise invalid_attribute("value", "and value-js must agree when both are given")
        typed = from_text
    if typed is None:
        raise invalid_attribute("value-js", "is required (or value, the value as text)")
    return typed


async def check_set_preference(ctx: Context, attrs: OrgPreferenceSet) -> PreferenceState:
    """Validate, then create or replace the named preference of the caller's organization."""
    organization_id = check_organization(ctx, attrs.organization_id)
    preference = PREFERENCES[attrs.name]
    value = _requested_value(preference, attrs)
    row, created = await _upsert(ctx.session, organization_id, preference.name, value)
    record_changes(
        ctx,
        [
            change(
                TYPE_NAME,
                row.id,
                "created" if created else "updated",
                fields=("name", "value") if created else ("value",),
                organization_id=organization_id,
                published=False,
            )
        ],
    )
    return _state(organization_id, preference, value, row.created_at, True)


async def _upsert(
    session: AsyncSession, organization_id: uuid.UUID, name: str, value: PreferenceValue
) -> tuple[OrgPreference, bool]:
    row = await repo.locked(session, organization_id, name)
    now = utcnow()
    if row is None:
        row = OrgPreference(
            id=preference_id(organization_id, name),
            organization_id=organization_id,
            name=name,
            value=value,
            created_at=now,
            last_modified_at=now,
        )
        try:
            # Two first settings of the same name may race; the loser replaces the winner's
            # value instead of failing the request with a conflict.
            async with session.begin_nested():
                session.add(row)
            return row, True
        except IntegrityError:
            row = await repo.locked_existing(session, organization_id, name)
    # Replacing a preference makes a new value: created-at says when the current one was set.
    row.value = value
    row.created_at = now
    return row, False
