"""The rules of voice lines, their queues, agents, recordings and tasks.

Providers are reached only from jobs (``jobs.py``): pointing a number at the IVR, redirecting
a waiting caller to an agent, fetching and transcribing recordings, reconciling the queue.
What a request does is write rows and enqueue those jobs in its own transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.auth import token_secret
from courier.core.errors import invalid_attribute, unprocessable
from courier.core.time import now_ms, utcnow
from courier.domains.text_accounts import repository as accounts
from courier.domains.voice.repository import fetch_row, line_of_number, voice_number, waiting_order
from courier.domains.voice.schemas import (
    RunTaskBody,
    VoiceQueueAgentCreate,
    VoiceQueueAgentRead,
    VoiceQueueEntryRead,
    VoiceRecordingRead,
    VoiceSettingCreate,
    VoiceSettingUpdate,
    VoiceTaskRead,
)
from courier.jobs.outbox import enqueue
from courier.jsonapi.changes import Changed
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.render import render_rows
from courier.jsonapi.resource import CrudService
from courier.models.text_account import TextAccount
from courier.models.user import User
from courier.models.voice import (
    VoiceQueueAgent,
    VoiceQueueEntry,
    VoiceRecording,
    VoiceSetting,
    VoiceTask,
)
from courier.providers.common import public_base

LINE_JOB = "voice.configure-line"
DISPATCH_JOB = "voice.dispatch"
CONNECT_JOB = "voice.connect"
TASK_JOB = "voice.run-task"
RECORDING_JOB = "voice.fetch-recording"
DELETE_RECORDING_JOB = "voice.delete-recording"
AGENT_TOKEN_TTL = timedelta(hours=4)
DOWNLOAD_PATH = "/voice-recordings/{id}/audio"
DOWNLOAD_TTL_SECONDS = 600


# --- URLs Courier gives the voice service ------------------------------------------------------


def twiml_url(settings: Settings, setting_id: uuid.UUID, step: str = "", **extra: str) -> str:
    query = {"step": step, **extra} if step else dict(extra)
    base = f"{public_base(settings)}/v1/voice-ivrs/{setting_id}/twiml/"
    return base + (f"?{urlencode(query)}" if query else "")


def callback_url(settings: Settings, hook: str) -> str:
    """The generic inbound path's URL for the voice kind (``line``, ``recording``,
    ``transcription``)."""
    from courier.providers.common import CALLBACK_PREFIX

    return f"{public_base(settings)}{CALLBACK_PREFIX}/voice/{hook}"


# --- signed download links -------------------------------------------------------------------


def _download_key(settings: Settings) -> bytes:
    return hmac.new(
        token_secret(settings).encode(), b"courier:voice-recording-links:v1", hashlib.sha256
    ).digest()


def download_signature(settings: Settings, recording_id: uuid.UUID, expires: int) -> str:
    message = f"{recording_id}\n{expires}".encode()
    return hmac.new(_download_key(settings), message, hashlib.sha256).hexdigest()


def download_url(settings: Settings, recording_id: uuid.UUID, base: str | None = None) -> str:
    expires = int(time.time()) + DOWNLOAD_TTL_SECONDS
    signature = download_signature(settings, recording_id, expires)
    root = (base or public_base(settings)).rstrip("/")
    path = DOWNLOAD_PATH.format(id=recording_id)
    return f"{root}{path}?expires={expires}&signature={signature}"


def download_allowed(settings: Settings, recording_id: uuid.UUID, expires: str, sig: str) -> bool:
    try:
        until = int(expires)
    except ValueError:
        return False
    if until < int(time.time()):
        return False
    return hmac.compare_digest(download_signature(settings, recording_id, until), sig)


# --- shared checks ---------------------------------------------------------------------------


def seconds_between(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds()))


async def enqueue_dispatch(session: AsyncSession, org: uuid.UUID, setting_id: uuid.UUID) -> None:
    await enqueue(session, DISPATCH_JOB, {"setting_id": setting_id}, organization_id=org)


# --- voice settings --------------------------------------------------------------------------


class VoiceSettingService(CrudService[VoiceSetting]):
    async def _account(self, ctx: Context, account_id: uuid.UUID | None) -> TextAccount:
        # One text account per organization (unique): the one named, else the organization's.
        if account_id is not None:
            found = await accounts.account(ctx.session, ctx.organization_id, account_id)
        else:
            found = await accounts.account_of(ctx.session, ctx.organization_id)
        if found is None:
            if account_id is None:
                raise unprocessable(
                    "the organization has no text account; create one and provision a number "
                    "with voice capability first",
                    "no-text-account",
                )
            raise invalid_attribute("account-id", "no such text account", "not-found")
        return found

    async def _check_number(self, ctx: Context, account_id: uuid.UUID, phone: str) -> None:
        if await voice_number(ctx.session, ctx.organization_id, account_id, phone) is None:
            raise unprocessable(
                f"{phone} is not an active number with voice capability of the text account",
                "number-not-voice-capable",
            )
        if await line_of_number(ctx.session, phone) is not None:
            from courier.core.errors import conflict

            raise conflict(
                f"{phone} already has a voice line",
                "duplicate-line",
                "/data/attributes/phone-number",
            )

    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[VoiceSetting]:
        assert isinstance(attrs, VoiceSettingCreate)
        account = await self._account(ctx, attrs.account_id)
        await self._check_number(ctx, account.id, attrs.phone_number)
        values = attrs.model_dump(exclude={"account_id", "organization_id", "business_hours"})
        setting = VoiceSetting(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            account_id=account.id,
            business_hours=_hours(attrs.business_hours),
            line_state="pending",
            created_by=ctx.principal.key_id,
            created_at=now_ms(),
            last_modified_at=now_ms(),
            **values,
        )
        ctx.session.add(setting)
        await ctx.session.flush()
        await enqueue(
            ctx.session, LINE_JOB, {"setting_id": setting.id}, organization_id=ctx.organization_id
        )
        return self.changed(ctx, "created", setting, list(attrs.given()))

    async def update(
        self, ctx: Context, obj: VoiceSetting, attrs: WriteAttributes
    ) -> Changed[VoiceSetting]:
        assert isinstance(attrs, VoiceSettingUpdate)
        given = attrs.given()
        given.pop("organization_id", None)
        if "phone_number" in given:
            if given["phone_number"] is None:
                raise invalid_attribute("phone-number", "a line needs its phone number")
            if given["phone_number"] != obj.phone_number:
                await self._check_number(ctx, obj.account_id, given["phone_number"])
        if given.get("recording_enabled", True) is None:
            raise invalid_attribute("recording-enabled", "true or false")
        if "business_hours" in given:
            given["business_hours"] = _hours(attrs.business_hours)
        for name, value in given.items():
            setattr(obj, name, value)
        obj.line_state, obj.line_error = "pending", None
        obj.last_modified_at = now_ms()
        await enqueue(
            ctx.session, LINE_JOB, {"setting_id": obj.id}, organization_id=ctx.organization_id
        )
        return self.changed(ctx, "updated", obj, list(attrs.given()))

    async def do_run_task(
        self, ctx: Context, setting: VoiceSetting, body: RunTaskBody | None
    ) -> Changed[VoiceTask]:
        """Run a maintenance task on the line (201, a ``voice-tasks`` row; a worker carries it
        out: poll its ``state``). ``refresh_queue_entries`` asks the voice service about every
        caller still waiting or connected; calls it reports as ended leave the queue (waiting
        ones as ``abandoned``)."""
        if body is None:
            raise invalid_attribute("method", "method is required (refresh_queue_entries)")
        task = VoiceTask(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            setting_id=setting.id,
            method=body.method,
            kwargs=body.arguments,
            state="created",
            created_by=ctx.principal.key_id,
            created_at=now_ms(),
            last_modified_at=now_ms(),
        )
        ctx.session.add(task)
        await ctx.session.flush()
        await enqueue(
            ctx.session,
            TASK_JOB,
            {"task_id": task.id},
            organization_id=ctx.organization_id,
            dedupe_key=f"{TASK_JOB}:{task.id}",
            new_key=True,
        )
        from courier.jsonapi.changes import change

        return Changed(
            task,
            [
                change(
                    "voice-tasks",
                    task.id,
                    "created",
                    fields=["method", "kwargs"],
                    organization_id=ctx.organization_id,
                )
            ],
        )


def _hours(hours: Sequence[Any] | None) -> list[dict[str, Any]] | None:
    if hours is None:
        return None
    return [h.model_dump(mode="json", by_alias=True) for h in hours]


def is_open(setting: VoiceSetting, timezone: str, at: datetime | None = None) -> bool:
    """Whether the line is within its business hours now (its organization's time zone)."""
    if not setting.business_hours:
        return True
    from zoneinfo import ZoneInfo

    try:
        local = (at or utcnow()).astimezone(ZoneInfo(timezone or "UTC"))
    except (KeyError, ValueError):
        local = at or utcnow()
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()]
    clock = local.strftime("%H:%M")
    return any(
        h.get("day") == day and str(h.get("open")) <= clock < str(h.get("close"))
        for h in setting.business_hours
    )


# --- tasks -----------------------------------------------------------------------------------


class VoiceTaskService(CrudService[VoiceTask]):
    async def present(self, ctx: Context, rows: Sequence[VoiceTask]) -> list[dict[str, Any]]:
        return render_rows(
            VoiceTaskRead,
            [
                {
                    "created_at": row.created_at,
                    "created_by": row.created_by,
                    "error_message": row.error_message,
                    "arguments": row.kwargs,
                    "last_modified_at": row.last_modified_at,
                    "method": row.method,
                    "result": row.result,
                    "setting": {"id": row.setting_id},
                    "state": row.state,
                }
                for row in rows
            ],
        )


# --- queue entries ---------------------------------------------------------------------------


def entry_values(row: VoiceQueueEntry, position: int | None, now: datetime) -> dict[str, Any]:
    """What VoiceQueueEntryRead renders of a queue entry."""
    end = row.connected_at or row.ended_at or now
    return {
        "agent_id": row.agent_id,
        "connected_at": row.connected_at,
        "created_at": row.created_at,
        "ended_at": row.ended_at,
        "individual_id": row.individual_id,
        "last_modified_at": row.last_modified_at,
        "phone_number": row.phone_number,
        "position": position if row.state == "waiting" else None,
        "queue_time": seconds_between(row.enqueued_at, end),
        "setting": {"id": row.setting_id},
        "state": row.state,
    }


class VoiceQueueEntryService(CrudService[VoiceQueueEntry]):
    async def present(self, ctx: Context, rows: Sequence[VoiceQueueEntry]) -> list[dict[str, Any]]:
        now = utcnow()
        waiting = {r.setting_id for r in rows if r.state == "waiting"}
        positions = await waiting_order(ctx.session, ctx.organization_id, waiting)
        return render_rows(
            VoiceQueueEntryRead, [entry_values(row, positions.get(row.id), now) for row in rows]
        )


# --- queue agents ----------------------------------------------------------------------------


class VoiceQueueAgentService(CrudService[VoiceQueueAgent]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[VoiceQueueAgent]:
        """An agent joins a line's queue: by browser (the answer carries a Voice access token
        for the agent's client identity) or by phone (``use-pstn``: callers are dialled
        through to ``phone-number``, default the user's phone). A line whose number is no
        longer an active, voice-capable number of its account: 422."""
        assert isinstance(attrs, VoiceQueueAgentCreate)
        setting = await fetch_row(ctx.session, VoiceSetting, ctx.organization_id, attrs.setting_id)
        if setting is None:
            raise invalid_attribute("setting-id", "no such voice setting", "not-found")
        number = await voice_number(
            ctx.session, ctx.organization_id, setting.account_id, setting.phone_number
        )
        if number is None:
            raise unprocessable(
                f"the line's number {setting.phone_number} was released or lost its voice "
                "capability: agents cannot join its queue",
                "line-number-released",
            )
        user: User | None = None
        if attrs.user_id is not None:
            user = await fetch_row(ctx.session, User, ctx.organization_id, attrs.user_id)
            if user is None:
                raise invalid_attribute("user-id", "no such user", "not-found")
        if attrs.individual_id is not None:
            from courier.domains.people.repository import require_individual

            await require_individual(
                ctx, attrs.individual_id, pointer="/data/attributes/individual-id"
            )
        phone = attrs.phone_number
        if attrs.use_pstn and phone is None:
            phone = user.phone if user is not None else None
            if phone is None:
                raise invalid_attribute(
                    "phone-number", "an agent joining by phone (use-pstn) needs a phone-number"
                )
        agent_id = uuid.uuid4()
        agent = VoiceQueueAgent(
            id=agent_id,
            organization_id=ctx.organization_id,
            setting_id=setting.id,
            user_id=attrs.user_id,
            individual_id=attrs.individual_id,
            use_pstn=attrs.use_pstn,
            phone_number=phone,
            identity=f"agent-{agent_id.hex}",
            state="available",
            free_since=now_ms(),
            created_by=ctx.principal.key_id,
            created_at=now_ms(),
            last_modified_at=now_ms(),
        )
        ctx.session.add(agent)
        await ctx.session.flush()
        await enqueue_dispatch(ctx.session, ctx.organization_id, setting.id)
        revealed: dict[str, Any] = {}
        if not attrs.use_pstn:
            from courier.providers.common import providers_for
            from courier.providers.voice import VOICE

            # Minted locally (no network): the Protocol allows it in a request.
            grant = (
                providers_for(ctx.settings)
                .get(VOICE)
                .access_token(agent.identity, ttl=AGENT_TOKEN_TTL, room=f"line-{setting.id}")
            )
            revealed["access-token"] = grant.token
        changed = self.changed(ctx, "joined", agent, list(attrs.given()))
        changed.revealed.update(revealed)
        return changed

    async def do_leave(
        self, ctx: Context, agent: VoiceQueueAgent, body: None
    ) -> Changed[VoiceQueueAgent]:
        """The agent leaves the queue (no new callers are sent to it; a call in progress goes
        on). Leaving twice changes nothing."""
        if agent.state == "left":
            return Changed(agent)
        agent.state = "left"
        agent.left_at = now_ms()
        agent.last_modified_at = now_ms()
        return self.changed(ctx, "left", agent, ["state"])

    async def present(self, ctx: Context, rows: Sequence[VoiceQueueAgent]) -> list[dict[str, Any]]:
        return render_rows(
            VoiceQueueAgentRead,
            [
                {
                    "access_token": None,
                    "call": {"id": row.entry_id} if row.entry_id else None,
                    "created_at": row.created_at,
                    "identity": row.identity,
                    "individual_id": row.individual_id,
                    "last_modified_at": row.last_modified_at,
                    "phone_number": row.phone_number,
                    "setting": {"id": row.setting_id},
                    "state": row.state,
                    "use_pstn": row.use_pstn,
                    "user": {"id": row.user_id} if row.user_id else None,
                }
                for row in rows
            ],
        )


# --- recordings ------------------------------------------------------------------------------


class VoiceRecordingService(CrudService[VoiceRecording]):
    async def present(self, ctx: Context, rows: Sequence[VoiceRecording]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for row in rows:
            link = None
            if row.state == "completed" and row.storage_key:
                link = download_url(ctx.settings, row.id)
            out.append(
                {
                    "created_at": row.created_at,
                    "download_count": row.download_count,
                    "download_url": link,
                    "duration": row.duration,
                    "individual_id": row.individual_id,
                    "kind": row.kind,
                    "last_modified_at": row.last_modified_at,
                    "phone_number": row.phone_number,
                    "setting_id": row.setting_id,
                    "state": row.state,
                    "transcription": row.transcription,
                    "transcription_state": row.transcription_state,
                }
            )
        return render_rows(VoiceRecordingRead, out)
