"""The rules of voice conferences, dial logs and surveys (docs/VOICE_CALLS.md).

Creating a conference or a survey checks who is called (an individual of the organization
with a phone), that the organization has a text account to call from, and (surveys) the
spec; it writes the row and one dial log per leg with its voice delivery. The calls are
placed by the delivery send job, never while the request waits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta

from courier.core.errors import ApiError, ErrorItem, bad_request, conflict, forbidden, unprocessable
from courier.core.time import utcnow
from courier.domains.people.repository import require_individual
from courier.domains.text_accounts import repository as accounts
from courier.domains.voice_calls.calls import place_leg
from courier.domains.voice_calls.schemas import (
    DIAL_LOG_TYPE,
    ConferenceCreate,
    CredentialsRead,
    SurveyCreate,
)
from courier.domains.voice_calls.survey_spec import check_spec
from courier.jsonapi.actions import EmptyBody
from courier.jsonapi.changes import Change, Changed, change
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.individual import Individual
from courier.models.voice_call import VoiceConference, VoiceDialLog, VoiceSurvey
from courier.providers.common import KINDS, Permanent, load_provider_kinds, providers_for
from courier.providers.voice.base import VoiceProvider

CREDENTIALS_TTL = timedelta(hours=1)


def leg_created(leg: VoiceDialLog) -> Change:
    return change(
        DIAL_LOG_TYPE,
        leg.id,
        "created",
        fields=["status"],
        audience=(leg.individual_id,),
        organization_id=leg.organization_id,
        data={
            "status": leg.status,
            "conference-id": str(leg.conference_id) if leg.conference_id else None,
            "survey-id": str(leg.survey_id) if leg.survey_id else None,
        },
    )


async def _callee(ctx: Context, ident: uuid.UUID, attribute: str) -> Individual:
    """The individual ``ident`` (404 naming the attribute) with a phone to call (else 422)."""
    pointer = f"/data/attributes/{attribute}"
    found = await require_individual(ctx, ident, pointer=pointer)
    if not found.phone:
        raise ApiError(
            422,
            [
                ErrorItem(
                    f"{attribute} names an individual without a phone number", "no-phone", pointer
                )
            ],
        )
    return found


async def _require_caller_id(ctx: Context) -> None:
    """The organization needs a text account (its numbers are the calls' caller id)."""
    if await accounts.account_of(ctx.session, ctx.organization_id) is None:
        raise unprocessable(
            "the organization has no text account with a number to call from; create one "
            "(POST /v1/text-accounts/) and a number (POST /v1/text-account-numbers/)",
            "no-caller-id",
        )


class ConferenceService(CrudService[VoiceConference]):
    def individuals_of(self, obj: VoiceConference) -> Iterable[uuid.UUID]:
        return tuple(i for i in (obj.individual_id, obj.provider_id) if i is not None)

    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[VoiceConference]:
        assert isinstance(attrs, ConferenceCreate)
        principal = ctx.principal
        provider_id = attrs.provider_id
        if principal.is_individual:
            assert principal.individual_id is not None
            caller = await require_individual(ctx, principal.individual_id)
            if caller.account_type != "provider":
                raise forbidden(
                    "only a provider's individual token may start a conference; a "
                    "participant's may not (or use an API key with role admin or staff)"
                )
            if provider_id is not None and provider_id != caller.id:
                raise forbidden("an individual token may start a conference only as itself")
            provider_id = caller.id
        individual = await _callee(ctx, attrs.individual_id, "individual-id")
        provider = await _callee(ctx, provider_id, "provider-id") if provider_id else None
        if provider is not None and provider.id == individual.id:
            raise ApiError(
                422,
                [
                    ErrorItem(
                        "provider-id must name someone else than individual-id",
                        "same-individual",
                        "/data/attributes/provider-id",
                    )
                ],
            )
        await _require_caller_id(ctx)
        now = utcnow()
        conference = VoiceConference(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            individual_id=individual.id,
            provider_id=provider.id if provider else None,
            state="created",
            extended=dict(attrs.extended or {}),
            created_at=now,
            created_by=principal.key_id or principal.individual_id,
            last_modified_at=now,
        )
        conference.name = f"courier-{conference.id.hex}"
        ctx.session.add(conference)
        await ctx.session.flush()
        placed = []
        for who, role in ((individual, "individual"), (provider, "provider")):
            if who is not None and who.phone:
                leg = await place_leg(
                    ctx.session,
                    ctx.settings,
                    organization_id=ctx.organization_id,
                    individual_id=who.id,
                    phone=who.phone,
                    role=role,
                    extended=conference.extended,
                    conference_id=conference.id,
                )
                placed.append(leg_created(leg))
        result = self.changed(ctx, "created", conference, sorted(attrs.model_fields_set))
        return result.also(*placed)

    async def do_get_credentials(
        self, ctx: Context, conference: VoiceConference, body: EmptyBody | None
    ) -> CredentialsRead:
        """A voice access token with which a participant of the conference (individual-id:
        the individual or the provider dialled; an individual token: itself) joins it from a
        browser or app. Someone else: 403; a conference already over: 409."""
        individual_id = ctx.acting_individual_id
        if individual_id is None:
            raise bad_request(
                "individual-id is required: the participant the token is for",
                "missing-parameter",
                parameter="individual-id",
            )
        if individual_id not in (conference.individual_id, conference.provider_id):
            raise forbidden("individual-id is not a participant of this conference")
        if conference.state in ("completed", "failed"):
            raise conflict(f"the conference is {conference.state}", "conference-over")
        load_provider_kinds()
        adapter = providers_for(ctx.settings).get(KINDS["voice"])
        assert isinstance(adapter, VoiceProvider)
        try:
            grant = adapter.access_token(
                f"individual-{individual_id}", ttl=CREDENTIALS_TTL, room=conference.name
            )
        except Permanent as exc:  # pragma: no cover - identities and ttl are always valid
            raise unprocessable(str(exc), "voice-token-refused") from exc
        return CredentialsRead(
            access_token=grant.token,
            identity=grant.identity,
            room=grant.room or conference.name,
            expires_at=grant.expires_at,
        )


class DialLogService(CrudService[VoiceDialLog]):
    def individuals_of(self, obj: VoiceDialLog) -> Iterable[uuid.UUID]:
        return (obj.individual_id,)


class SurveyService(CrudService[VoiceSurvey]):
    def individuals_of(self, obj: VoiceSurvey) -> Iterable[uuid.UUID]:
        return (obj.individual_id,)

    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[VoiceSurvey]:
        assert isinstance(attrs, SurveyCreate)
        if ctx.principal.is_individual:
            raise forbidden(
                "an individual token cannot start a survey call; use an API key with role "
                "admin or staff"
            )
        problems = check_spec(attrs.spec)
        if problems:
            raise ApiError(422, problems, {}, True)
        individual = await _callee(ctx, attrs.individual_id, "individual-id")
        await _require_caller_id(ctx)
        now = utcnow()
        survey = VoiceSurvey(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            individual_id=individual.id,
            spec=dict(attrs.spec),
            result=[],
            state="created",
            position=0,
            attempts=0,
            extended=dict(attrs.extended or {}),
            created_at=now,
            created_by=ctx.principal.key_id,
            last_modified_at=now,
        )
        ctx.session.add(survey)
        await ctx.session.flush()
        assert individual.phone is not None
        leg = await place_leg(
            ctx.session,
            ctx.settings,
            organization_id=ctx.organization_id,
            individual_id=individual.id,
            phone=individual.phone,
            role="survey",
            extended=survey.extended,
            survey_id=survey.id,
        )
        result = self.changed(ctx, "created", survey, sorted(attrs.model_fields_set))
        return result.also(leg_created(leg))


conferences = ConferenceService()
dial_logs = DialLogService()
surveys = SurveyService()
