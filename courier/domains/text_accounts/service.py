"""The rules of text accounts, numbers and user number maps.

Numbers are provisioned (by area code) or claimed (a number already in the provider account)
by a job: a request never waits on a carrier. A new number is ``pending`` until the job binds
the carrier's number to it (``active``) or gives up (``failed``, with ``error``).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from courier.core.errors import (
    ApiError,
    ErrorItem,
    conflict,
    invalid_attribute,
    not_found,
    unprocessable,
)
from courier.core.sealed import seal
from courier.domains.messaging.repository import require_group
from courier.domains.text_accounts import repository as repo
from courier.domains.text_accounts.schemas import (
    ClaimNumberBody,
    NumberEvents,
    TelephonyConfig,
    TextAccountCreate,
    TextAccountUpdate,
    TextNumberCreate,
    TextNumberUpdate,
    TextUserNumberMapCreate,
)
from courier.jobs import enqueue
from courier.jsonapi.actions import EmptyBody
from courier.jsonapi.changes import Changed
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.text_account import (
    TextAccount,
    TextAccountNumber,
    TextNumberLog,
    TextReceiveLog,
    TextUserNumberMap,
)

PROVISION_JOB = "texts.provision-number"
SECRET_PREFIX = "txsec_"


def configured_provider(ctx: Context) -> str:
    return str(getattr(ctx.settings, "sms_provider", "sandbox"))


def _check_org(ctx: Context, given: uuid.UUID | None) -> None:
    if given is not None and given != ctx.organization_id:
        raise not_found("organization")


class TextAccountService(CrudService[TextAccount]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[TextAccount]:
        """The account, with its ``callback-secret`` shown in this response only."""
        assert isinstance(attrs, TextAccountCreate)
        _check_org(ctx, attrs.organization_id)
        if await repo.account_of(ctx.session, ctx.organization_id) is not None:
            raise conflict("the organization already has a text account", "text-account-exists")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        account = TextAccount(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            provider=configured_provider(ctx),
            allow_custom_number=attrs.allow_custom_number,
            phone_number=attrs.phone_number,
            provider_account_id=attrs.twilio_id,
            credentials_encrypted=(
                seal(ctx.settings, attrs.credentials.auth_token) if attrs.credentials else None
            ),
            callback_secret=secret,
            telephony_config=(attrs.telephony_config or TelephonyConfig()).model_dump(
                by_alias=True
            ),
            quiet_hours=attrs.quiet_hours.model_dump(by_alias=True) if attrs.quiet_hours else None,
            opt_out_scope=attrs.opt_out_scope,
            help_text=attrs.help_text,
        )
        ctx.session.add(account)
        try:
            await ctx.session.flush()
        except IntegrityError as exc:  # a concurrent create won
            raise conflict(
                "the organization already has a text account", "text-account-exists"
            ) from exc
        created = self.changed(ctx, "created", account, sorted(attrs.model_fields_set))
        created.revealed["callback-secret"] = secret
        return created

    async def update(self, ctx: Context, obj: TextAccount, attrs: WriteAttributes) -> TextAccount:
        assert isinstance(attrs, TextAccountUpdate)
        given = attrs.given()
        if "allow_custom_number" in given:
            obj.allow_custom_number = attrs.allow_custom_number is True
        if "phone_number" in given:
            obj.phone_number = attrs.phone_number
        if "twilio_id" in given:
            obj.provider_account_id = attrs.twilio_id
        if "credentials" in given:
            obj.credentials_encrypted = (
                seal(ctx.settings, attrs.credentials.auth_token) if attrs.credentials else None
            )
        if attrs.telephony_config is not None:
            obj.telephony_config = attrs.telephony_config.model_dump(by_alias=True)
        if "quiet_hours" in given:
            obj.quiet_hours = (
                attrs.quiet_hours.model_dump(by_alias=True) if attrs.quiet_hours else None
            )
        if attrs.opt_out_scope is not None:
            obj.opt_out_scope = attrs.opt_out_scope
        if "help_text" in given:
            obj.help_text = attrs.help_text
        return obj

    async def do_claim_number(
        self, ctx: Context, account: TextAccount, body: ClaimNumberBody
    ) -> Changed[TextAccountNumber]:
        """A number already in the provider account (``phone-number``, default the account's
        ``phone-number``; needs ``allow-custom-number``) becomes one of the account's numbers,
        ``pending`` until the provider confirms it."""
        phone = body.phone_number or account.phone_number
        if phone is None:
            raise invalid_attribute(
                "phone-number", "name the number to claim, or set the account's phone-number"
            )
        if not account.allow_custom_number:
            raise unprocessable(
                "the account does not allow custom numbers (allow-custom-number)", "custom-number"
            )
        if await repo.phone_taken(ctx.session, phone):
            raise conflict(f"{phone} is already a text number", "number-taken")
        num = TextAccountNumber(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            account_id=account.id,
            status="pending",
            claimed=True,
            phone_number=phone,
            notes=body.notes,
            events={},
        )
        ctx.session.add(num)
        await enqueue(
            ctx.session, PROVISION_JOB, {"number_id": num.id}, organization_id=ctx.organization_id
        )
        return numbers.changed(ctx, "created", num, ["notes", "phone-number"])

    async def present(self, ctx: Context, rows: Sequence[TextAccount]) -> list[dict[str, Any]]:
        out = []
        for row in rows:
            out.append(
                {
                    "allow-custom-number": row.allow_custom_number,
                    "created-at": _ts(row.created_at),
                    "organization-id": str(row.organization_id),
                    "phone-number": row.phone_number,
                    "twilio-id": row.provider_account_id,
                    "provider": row.provider,
                    "telephony-config": TelephonyConfig.model_validate(
                        row.telephony_config or {}
                    ).model_dump(by_alias=True),
                    "quiet-hours": row.quiet_hours,
                    "opt-out-scope": row.opt_out_scope,
                    "help-text": row.help_text,
                    "has-credentials": row.credentials_encrypted is not None,
                    "callback-secret": None,  # shown once, when the account is created
                }
            )
        return out


def _ts(value: Any) -> str:
    from courier.core.time import format_timestamp

    return format_timestamp(value)


async def _account_for(ctx: Context, account_id: uuid.UUID | None) -> TextAccount:
    if account_id is None:
        found = await repo.account_of(ctx.session, ctx.organization_id)
        if found is None:
            raise unprocessable(
                "the organization has no text account: create one first", "no-text-account"
            )
        return found
    found = await repo.account(ctx.session, ctx.organization_id, account_id)
    if found is None:
        raise not_found("text account")
    return found


GROUP_POINTER = "/data/attributes/events/unknown-number/individual-group-id"


async def _check_events(ctx: Context, events: NumberEvents | None) -> dict[str, Any]:
    """A number's ``events`` as stored: ``open-channel`` names the group whose members join
    the channels it opens (422 without one), a group of the organization (else 404)."""
    if events is None:
        return {}
    rule = events.unknown_number
    if rule.individual_group_id is not None:
        await require_group(
            ctx.session, ctx.organization_id, rule.individual_group_id, GROUP_POINTER
        )
    elif rule.action == "open-channel":
        raise ApiError(
            422,
            [
                ErrorItem(
                    "open-channel needs individual-group-id: the group of the care team that "
                    "joins each channel it opens",
                    "no-individual-group",
                    pointer=GROUP_POINTER,
                )
            ],
        )
    return events.model_dump(mode="json", by_alias=True)


class TextNumberService(CrudService[TextAccountNumber]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> TextAccountNumber:
        assert isinstance(attrs, TextNumberCreate)
        account = await _account_for(ctx, attrs.account_id)
        events = await _check_events(ctx, attrs.events)
        num = TextAccountNumber(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            account_id=account.id,
            status="pending",
            area_code=attrs.area_code,
            alert=attrs.alert,
            forward_to=attrs.forward_to,
            logging=attrs.logging,
            notes=attrs.notes,
            events=events,
            rate_per_second=attrs.rate_per_second,
        )
        ctx.session.add(num)
        await enqueue(
            ctx.session, PROVISION_JOB, {"number_id": num.id}, organization_id=ctx.organization_id
        )
        return num

    async def update(
        self, ctx: Context, obj: TextAccountNumber, attrs: WriteAttributes
    ) -> TextAccountNumber:
        assert isinstance(attrs, TextNumberUpdate)
        given = attrs.given()
        for name in ("alert", "forward_to", "logging", "notes", "rate_per_second"):
            if name in given:
                setattr(obj, name, given[name])
        if attrs.events is not None:
            obj.events = await _check_events(ctx, attrs.events)
        return obj

    async def do_reset_logs(
        self, ctx: Context, num: TextAccountNumber, body: EmptyBody | None
    ) -> Changed[TextAccountNumber]:
        """Deletes the number's activity log and received texts."""
        await repo.clear_logs(ctx.session, ctx.organization_id, num.id)
        return self.changed(ctx, "logs-reset", num)

    async def present(
        self, ctx: Context, rows: Sequence[TextAccountNumber]
    ) -> list[dict[str, Any]]:
        out = await super().present(ctx, rows)
        for row, attributes in zip(rows, out, strict=True):
            attributes["twilio-id"] = row.provider_id
        return out


accounts = TextAccountService()
numbers = TextNumberService()


class TextNumberLogService(CrudService[TextNumberLog]):
    pass


class TextReceiveLogService(CrudService[TextReceiveLog]):
    pass


class TextUserNumberMapService(CrudService[TextUserNumberMap]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> TextUserNumberMap:
        """Map a user to a number; a user texts from one number, so this replaces an older map."""
        assert isinstance(attrs, TextUserNumberMapCreate)
        _check_org(ctx, attrs.organization_id)
        if await repo.number(ctx.session, ctx.organization_id, attrs.number_id) is None:
            raise invalid_attribute("number-id", "no such text number in this organization")
        if not await repo.user_exists(ctx.session, ctx.organization_id, attrs.user_id):
            raise invalid_attribute("user-id", "no such user in this organization")
        existing = await repo.user_map(ctx.session, ctx.organization_id, attrs.user_id)
        if existing is not None:
            existing.number_id = attrs.number_id
            return existing
        row = TextUserNumberMap(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            number_id=attrs.number_id,
            user_id=attrs.user_id,
        )
        ctx.session.add(row)
        return row
