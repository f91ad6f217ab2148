"""The rules of notification templates: what may be saved, and checking one for a user.

- Admin keys create and modify templates; every key reads them. A name is unique in the
  organization (409). A template serves at least one channel (in its default bodies).
- Every text (each channel's fields, each locale's, the deep link) is checked when saved: a
  syntax error, a construct the sandbox refuses, or a name that is neither a ``required-data``
  key nor ``individual``/``organization``/``now`` is 400 pointing at the field.
- A sensitive template needs a ``deep-link``: its pushes and texts carry only the neutral line
  and that link.
- ``validate-multicast-params`` (on users) renders the template for the user without sending:
  ``{"success", "info"}``, ``info`` naming each missing or mistyped key or failing text.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.errors import ApiError, ErrorItem, not_found
from courier.core.time import now_ms
from courier.domains.org_preferences.service import get_preference
from courier.domains.organizations.repository import organization as organization_row
from courier.domains.people.repository import require_individual
from courier.domains.templates.render import (
    CHANNELS,
    CONTEXT_NAMES,
    DataError,
    Recipient,
    RenderError,
    TextError,
    check_text,
    individual_values,
    render,
)
from courier.domains.templates.repository import find_template
from courier.domains.templates.schemas import (
    TemplateCreate,
    TemplateUpdate,
    ValidateMulticastBody,
    ValidateMulticastRead,
)
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.individual import Individual
from courier.models.template import Template
from courier.models.user import User

DATA_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
LOCALE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$")
TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "apn": ("title", "body"),
    "fcm": ("title", "body"),
    "web": ("title", "body"),
    "sms": ("body",),
    "email": ("subject", "text", "html"),
}
NOT_NULL = ("name", "required-data", "locales", "sensitive", "neutral-text")


def _invalid(pointer: str, detail: str, code: str = "invalid-template") -> ApiError:
    return ApiError(400, [ErrorItem(detail, code, pointer=f"/data/attributes/{pointer}")], {}, True)


def _dump(body: Any) -> dict[str, Any] | None:
    if body is None:
        return None
    dumped: dict[str, Any] = body.model_dump(by_alias=True, exclude_none=True)
    return dumped


def _check_required(required: Mapping[str, str]) -> None:
    for key in required:
        if not DATA_KEY.match(key):
            raise _invalid(
                f"required-data/{key}",
                f"required-data key {key!r} must match ^[a-z][a-z0-9_]{{0,63}}$",
            )
        if key in CONTEXT_NAMES:
            raise _invalid(
                f"required-data/{key}",
                f"required-data key {key!r} is taken by the context ({', '.join(CONTEXT_NAMES)})",
            )


def _check_bodies(where: str, bodies: Mapping[str, Any], required: Mapping[str, str]) -> None:
    """Each text of the channel bodies in ``bodies`` (a template's or a locale's)."""
    for channel in CHANNELS:
        body = bodies.get(channel)
        if body is None:
            continue
        texts = [(name, body.get(name)) for name in TEXT_FIELDS[channel]]
        texts += [(f"data/{key}", value) for key, value in (body.get("data") or {}).items()]
        for name, source in texts:
            if source is None:
                continue
            try:
                check_text(source, required, html=channel == "email" and name == "html")
            except TextError as exc:
                pointer = f"{where}{channel}/{name}"
                raise _invalid(pointer, f"{pointer.replace('/', '.')} {exc}") from exc


def check_template(template: Template) -> None:
    """Everything a saved template must satisfy; 400 pointing at the first field that fails."""
    required: dict[str, str] = template.required_data
    _check_required(required)
    if not any(template.channels.get(channel) for channel in CHANNELS):
        raise _invalid("apn", "a template serves at least one of apn, fcm, web, sms, email")
    _check_bodies("", template.channels, required)
    seen: set[str] = set()
    for tag, variant in template.locales.items():
        if not LOCALE_TAG.match(tag):
            raise _invalid(
                f"locales/{tag}", f"locales: {tag!r} is not a locale tag (e.g. en, es-MX)"
            )
        if tag.casefold() in seen:
            raise _invalid(f"locales/{tag}", f"locales: {tag!r} is given twice (any case)")
        seen.add(tag.casefold())
        _check_bodies(f"locales/{tag}/", variant, required)
    if template.deep_link is not None:
        try:
            check_text(template.deep_link, required)
        except TextError as exc:
            raise _invalid("deep-link", f"deep-link {exc}") from exc
    elif template.sensitive:
        raise _invalid(
            "deep-link",
            "deep-link is required for a sensitive template: its pushes and texts carry only "
            "the neutral line and that link",
        )


class TemplateService(CrudService[Template]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> Template:
        assert isinstance(attrs, TemplateCreate)
        if attrs.organization_id is not None and attrs.organization_id != ctx.organization_id:
            raise not_found("organization")
        now = now_ms()
        template = Template(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            name=attrs.name,
            category=attrs.category,
            channels={
                channel: dumped
                for channel in CHANNELS
                if (dumped := _dump(getattr(attrs, channel))) is not None
            },
            required_data=dict(attrs.required_data),
            locales={tag: _dump(variant) or {} for tag, variant in attrs.locales.items()},
            sensitive=attrs.sensitive,
            neutral_text=attrs.neutral_text,
            deep_link=attrs.deep_link,
            created_at=now,
            created_by=ctx.principal.key_id,
            last_modified_at=now,
            last_modified_by=ctx.principal.key_id,
        )
        check_template(template)
        await self.repository.require_free_name(ctx, attrs.name)
        ctx.session.add(template)
        return template

    async def update(self, ctx: Context, obj: Template, attrs: WriteAttributes) -> Template:
        assert isinstance(attrs, TemplateUpdate)
        given = attrs.given()
        requested = given.pop("organization_id", None)
        if requested is not None and requested != ctx.organization_id:
            raise not_found("organization")
        nulls = [
            ErrorItem(
                f"{kebab_name} must not be null",
                "null-attribute",
                pointer=f"/data/attributes/{kebab_name}",
            )
            for name, value in sorted(given.items())
            if value is None and (kebab_name := name.replace("_", "-")) in NOT_NULL
        ]
        if nulls:
            raise ApiError(400, nulls, {}, True)
        channels = dict(obj.channels)
        for channel in CHANNELS:
            if channel in given:
                dumped = _dump(given[channel])
                if dumped is None:
                    channels.pop(channel, None)  # null removes the channel
                else:
                    channels[channel] = dumped
        obj.channels = channels
        if "required_data" in given:
            obj.required_data = dict(given["required_data"])
        if "locales" in given:
            obj.locales = {tag: _dump(variant) or {} for tag, variant in given["locales"].items()}
        for name in ("category", "sensitive", "neutral_text", "deep_link"):
            if name in given:
                setattr(obj, name, given[name])
        check_template(obj)
        if "name" in given and given["name"] != obj.name:
            await self.repository.require_free_name(ctx, given["name"], exclude=obj.id)
            obj.name = given["name"]
        obj.last_modified_at = now_ms()
        obj.last_modified_by = ctx.principal.key_id
        return obj

    async def do_validate_multicast_params(
        self, ctx: Context, user: User, body: ValidateMulticastBody
    ) -> ValidateMulticastRead:
        """Render a template for this user without sending anything (staff and admin keys).

        ``template-id`` is the template's id or its name (another organization's: 404);
        ``individual-id`` the individual it is rendered for: the user's primary individual
        (the default) or one the user manages (another: 422). The answer's ``success`` says
        whether a multicast with this ``data`` would render on every channel of the template,
        and ``info`` names each missing or mistyped key, or the text that fails."""
        if body.organization_id is not None and body.organization_id != ctx.organization_id:
            raise not_found("organization")
        template = await find_template(ctx.session, ctx.organization_id, body.template_id)
        individual = await individual_of_user(ctx, user, body.individual_id)
        recipient = await recipient_for(ctx.session, ctx.organization_id, user, individual)
        locale = user.locale or (individual.locale if individual is not None else None)
        try:
            rendered = render(template, locale, body.data, recipient)
        except DataError as exc:
            return ValidateMulticastRead(
                success=False, info=f"template {template.name!r}: " + "; ".join(exc.problems)
            )
        except RenderError as exc:
            return ValidateMulticastRead(
                success=False, info=f"template {template.name!r} cannot be rendered: {exc}"
            )
        served = [
            f"{channel} ({rendered[channel]['locale'] or 'default'})"
            for channel in CHANNELS
            if channel in rendered
        ]
        info = f"template {template.name!r} renders for this user: {', '.join(served)}"
        if template.sensitive:
            info += "; sensitive: pushes and texts carry only the neutral line and the deep link"
        return ValidateMulticastRead(success=True, info=info, rendered=rendered)


async def individual_of_user(
    ctx: Context, user: User, requested: uuid.UUID | None
) -> Individual | None:
    if requested is None:
        if user.primary_individual_id is None:
            return None
        return await require_individual(ctx, user.primary_individual_id)
    individual = await require_individual(ctx, requested, pointer="/individual-id")
    if individual.id != user.primary_individual_id and individual.owner_id != user.id:
        raise ApiError(
            422,
            [
                ErrorItem(
                    "individual-id is neither the user's primary individual nor one the user "
                    "manages",
                    "individual-not-of-user",
                    pointer="/individual-id",
                )
            ],
        )
    return individual


async def recipient_for(
    session: AsyncSession,
    organization_id: uuid.UUID,
    user: User | None,
    individual: Individual | None,
) -> Recipient:
    """Who a template is rendered for: the individual's names (else the user's), the time zone
    (the user's, the individual's, else the organization's) and the organization's locale."""
    return (await recipients_of(session, organization_id)).recipient(user, individual)


@dataclass(frozen=True)
class OrganizationRecipients:
    """What every recipient of one organization shares (loaded once: two statements), so a
    batch of renderings (a multicast's) costs nothing more per recipient."""

    organization: Mapping[str, Any]
    timezone: str | None
    locale: str

    def recipient(self, user: User | None, individual: Individual | None) -> Recipient:
        if individual is not None:
            person = individual_values(
                individual.id,
                individual.first_name,
                individual.last_name,
                individual.preferred_name,
            )
        elif user is not None:
            person = individual_values(None, user.first_name, user.last_name, None)
        else:
            person = individual_values(None, None, None, None)
        zone = (
            (user.tz if user is not None else None)
            or (individual.tz if individual is not None else None)
            or self.timezone
            or "UTC"
        )
        return Recipient(
            individual=person,
            organization=self.organization,
            timezone=zone,
            organization_locale=self.locale,
        )


async def recipients_of(
    session: AsyncSession, organization_id: uuid.UUID
) -> OrganizationRecipients:
    """The organization's part of every :class:`Recipient` (see :func:`recipient_for`)."""
    organization = await organization_row(session, organization_id)
    return OrganizationRecipients(
        organization={
            "id": str(organization.id),
            "name": organization.name,
            "display_name": organization.display_name,
            "timezone": organization.timezone,
        },
        timezone=organization.timezone,
        locale=await get_preference(session, organization_id, "locale"),
    )


templates = TemplateService()
