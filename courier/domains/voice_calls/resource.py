"""``voice-conferences`` (list, start, get, ``get-credentials``), ``voice-dial-logs`` (list,
get: one per call leg) and ``voice-surveys`` (list, start, get with result).
docs/VOICE_CALLS.md."""

from __future__ import annotations

from typing import Any

from courier.core.auth import Permission
from courier.domains.voice_calls import endpoints as _endpoints  # the TwiML webhook
from courier.domains.voice_calls import purge as _purge  # the purge hook
from courier.domains.voice_calls.repository import conference_scope, dial_log_scope, survey_scope
from courier.domains.voice_calls.schemas import (
    CONFERENCE_TYPE,
    DIAL_LOG_TYPE,
    STATES,
    SURVEY_TYPE,
    ConferenceCreate,
    ConferenceRead,
    CredentialsRead,
    DialLogRead,
    SurveyCreate,
    SurveyRead,
)
from courier.domains.voice_calls.service import conferences, dial_logs, surveys
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.voice_call import VoiceConference, VoiceDialLog, VoiceSurvey


def states_filter(column: Any) -> q.Filter:
    return q.one_of("filter[states]", column, STATES)


conferences_spec = register(
    ResourceSpec(
        type_name=CONFERENCE_TYPE,
        model=VoiceConference,
        read_schema=ConferenceRead,
        create_schema=ConferenceCreate,
        service=conferences,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE}),
        filters=[
            q.uuid_eq(
                "filter[individual-id]",
                VoiceConference.individual_id,
                "Conferences dialling this individual",
            ),
            states_filter(VoiceConference.state),
        ],
        sorts={"created-at": VoiceConference.created_at},
        default_sort=[("created-at", True)],
        permissions={Op.CREATE: Permission.COMMUNICATE},
        individual_scope=conference_scope,
        summaries={
            Op.LIST: "List conferences (filter[individual-id], filter[states])",
            Op.GET: "Get one conference",
            Op.CREATE: "Start a conference call: the individual and the provider (provider-id) "
            "are dialled into one conference",
        },
        singular="voice conference",
        tag="voice",
        actions=[
            ActionSpec(
                "get-credentials",
                conferences.do_get_credentials,
                summary="Access token to join a conference (individual-id: a participant)",
                method="GET",
                permission=Permission.COMMUNICATE,
                individuals=True,
                response=CredentialsRead,
            )
        ],
    )
)

dial_logs_spec = register(
    ResourceSpec(
        type_name=DIAL_LOG_TYPE,
        model=VoiceDialLog,
        read_schema=DialLogRead,
        service=dial_logs,
        ops=frozenset({Op.LIST, Op.GET}),
        filters=[
            q.uuid_eq(
                "filter[conference-id]", VoiceDialLog.conference_id, "The legs of this conference"
            ),
            q.uuid_eq(
                "filter[individual-id]", VoiceDialLog.individual_id, "Calls to this individual"
            ),
            q.uuid_eq("filter[survey-id]", VoiceDialLog.survey_id, "The call of this survey"),
        ],
        sorts={"created-at": VoiceDialLog.created_at},
        default_sort=[("created-at", False)],
        individual_scope=dial_log_scope,
        summaries={
            Op.LIST: "Call legs (filter[conference-id], filter[individual-id], filter[survey-id])",
            Op.GET: "Get one call leg",
        },
        singular="voice dial log",
        tag="voice",
    )
)

surveys_spec = register(
    ResourceSpec(
        type_name=SURVEY_TYPE,
        model=VoiceSurvey,
        read_schema=SurveyRead,
        create_schema=SurveyCreate,
        service=surveys,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE}),
        filters=[
            q.uuid_eq(
                "filter[individual-id]", VoiceSurvey.individual_id, "Surveys of this individual"
            ),
            states_filter(VoiceSurvey.state),
        ],
        sorts={"created-at": VoiceSurvey.created_at},
        default_sort=[("created-at", True)],
        permissions={Op.CREATE: Permission.COMMUNICATE},
        individual_scope=survey_scope,
        summaries={
            Op.LIST: "List voice surveys (filter[individual-id], filter[states])",
            Op.GET: "Get one survey with its result",
            Op.CREATE: "Start a voice survey call for an individual (spec: questions)",
        },
        singular="voice survey",
        tag="voice",
    )
)

__all__ = ["_endpoints", "_purge", "conferences_spec", "dial_logs_spec", "surveys_spec"]
