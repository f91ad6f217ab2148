"""What a conference's or survey's call does once answered: the voice service fetches the
leg's TwiML here (``POST /providers/voice/calls/{leg}``, signed by the service: a forged
request is 401; not part of the API).

- A conference leg joins the conference room: ``<Dial><Conference>name</Conference></Dial>``
  (the provider's leg ends the conference when it leaves; the individual hears a line first).
- A survey leg is asked its questions one at a time with ``<Gather>``: each answer comes back
  here with ``?q=<index>`` (a repeated or stale request re-asks the current question), is
  judged, retried, and recorded in the survey's result; silence falls through to a
  ``<Redirect>`` that counts as a try without an answer.

Never a 500 to a caller: an unknown leg, or a survey already over, answers a short goodbye.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request, Response

from courier.config import Settings
from courier.core.db import commit
from courier.core.time import utcnow
from courier.domains.voice_calls.calls import CALL_PATH, on_status, survey_change
from courier.domains.voice_calls.repository import leg_of_webhook, locked
from courier.domains.voice_calls.survey_spec import Question, judge, questions_of
from courier.jsonapi.changes import SYSTEM, Change, write_changes
from courier.models.voice_call import VoiceConference, VoiceDialLog, VoiceSurvey
from courier.providers.common import KINDS, load_provider_kinds, providers_for
from courier.providers.inbound import raw_request
from courier.providers.voice.base import VoiceProvider

if TYPE_CHECKING:
    from twilio.twiml.voice_response import VoiceResponse  # type: ignore[import-untyped]

router = APIRouter(tags=["providers"])
SORRY = "Sorry, this call cannot continue. Goodbye."


def _xml(answer: VoiceResponse) -> Response:
    return Response(str(answer), media_type="application/xml")


def _goodbye(text: str = SORRY) -> Response:
    from twilio.twiml.voice_response import VoiceResponse

    answer = VoiceResponse()
    answer.say(text)
    answer.hangup()
    return _xml(answer)


@router.post(CALL_PATH, include_in_schema=False)
async def leg_script(leg_id: str, request: Request) -> Response:
    settings: Settings = request.app.state.settings
    load_provider_kinds()
    adapter = providers_for(settings).get(KINDS["voice"])
    raw = await raw_request(settings, request, "calls")
    if not isinstance(adapter, VoiceProvider) or not adapter.verify(raw):
        return Response(status_code=401)
    try:
        ident = uuid.UUID(leg_id)
    except ValueError:
        return _goodbye()
    form = {key: values[0] for key, values in raw.form_dict().items() if values}
    query = {key: values[0] for key, values in parse_qs(urlsplit(raw.url).query).items()}
    async with request.app.state.database.sessionmaker() as session:
        leg = await leg_of_webhook(session, ident)
        if leg is None:
            return _goodbye()
        # The call is answered (the service fetches TwiML only then).
        await on_status(session, leg, "in-progress", call_sid=form.get("CallSid"))
        if leg.conference_id is not None:
            response = await _conference(session, leg)
        elif leg.survey_id is not None:
            response = await _survey(session, settings, leg, raw.url, form, query)
        else:
            response = _goodbye()
        await commit(session)
    return response


async def _conference(session: Any, leg: VoiceDialLog) -> Response:
    assert leg.conference_id is not None
    conference: VoiceConference | None = await locked(
        session, VoiceConference, leg.organization_id, leg.conference_id
    )
    if conference is None or conference.state in ("completed", "failed"):
        return _goodbye("This call has ended. Goodbye.")
    from twilio.twiml.voice_response import Dial, VoiceResponse

    answer = VoiceResponse()
    if leg.role == "individual":
        answer.say("Please hold while we connect you with your care team.")
    dial = Dial()
    dial.conference(
        conference.name,
        start_conference_on_enter=True,
        end_conference_on_exit=leg.role == "provider",
        beep=False,
    )
    answer.append(dial)
    return _xml(answer)


def _ask(answer: VoiceResponse, question: Question, index: int, url: str, intro: str = "") -> None:
    from twilio.twiml.voice_response import Gather

    gather = Gather(
        input=question.answer,
        action=f"{url}?q={index}",
        method="POST",
        timeout=question.timeout,
        **({"num_digits": question.digits} if question.digits else {}),
        **({"speech_timeout": "auto"} if question.answer == "speech" else {}),
    )
    if intro:
        gather.say(intro)
    gather.say(question.prompt)
    answer.append(gather)
    # No input: Twilio (and the sandbox) go on with the next verb.
    answer.redirect(f"{url}?q={index}&silent=1", method="POST")


async def _survey(
    session: Any,
    settings: Settings,
    leg: VoiceDialLog,
    url: str,
    form: dict[str, str],
    query: dict[str, str],
) -> Response:
    assert leg.survey_id is not None
    survey: VoiceSurvey | None = await locked(
        session, VoiceSurvey, leg.organization_id, leg.survey_id
    )
    if survey is None or survey.state in ("completed", "failed"):
        return _goodbye("This survey is over. Goodbye.")
    spec = dict(survey.spec or {})
    questions = questions_of(spec)
    base = url.split("?", 1)[0]
    from twilio.twiml.voice_response import VoiceResponse

    answer = VoiceResponse()
    changes: list[Change] = []
    asked = query.get("q")
    if asked is None or not asked.isdigit() or int(asked) != survey.position:
        # The call was just answered (or a stale request): ask the current question.
        intro = str(spec.get("greeting") or "") if survey.position == 0 and asked is None else ""
        _ask(answer, questions[survey.position], survey.position, base, intro)
        return _xml(answer)
    question = questions[survey.position]
    given = form.get("Digits") if question.answer == "dtmf" else form.get("SpeechResult")
    value, problem = judge(question, given or "")
    survey.attempts += 1
    now = utcnow()
    if problem is None or survey.attempts > question.retries:
        entry = {
            "question": question.name,
            "answer": value if problem is None else None,
            "valid": problem is None,
            "given": given,
            "attempts": survey.attempts,
        }
        survey.result = [*(survey.result or []), entry]
        survey.position += 1
        survey.attempts = 0
        survey.last_modified_at = now
        changes.append(survey_change(survey, "answered", ["result"]))
        if survey.position >= len(questions):
            survey.state = "completed"
            survey.ended_at = now
            changes.append(survey_change(survey, "completed"))
            answer.say(str(spec.get("goodbye") or "Thank you. Goodbye."))
            answer.hangup()
        else:
            _ask(answer, questions[survey.position], survey.position, base)
    else:
        survey.last_modified_at = now
        retry = "We did not hear an answer." if not given else "Sorry, that is not a valid answer."
        _ask(answer, question, survey.position, base, retry)
    write_changes(session, changes, actor=SYSTEM, request_id=None)
    return _xml(answer)
