"""The slow and external part of voice lines, in jobs: pointing a number at the IVR, handing
the longest-waiting caller to the next free agent, redirecting the caller's call, reconciling
the queue with the voice service, fetching, storing and transcribing recordings, and applying
the voice service's status, recording and transcription callbacks (the inbound path)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.time import now_ms, utcnow
from courier.domains.voice import repository as repo
from courier.domains.voice.repository import fetch_row, individual_by_phone
from courier.domains.voice.service import (
    CONNECT_JOB,
    DELETE_RECORDING_JOB,
    DISPATCH_JOB,
    LINE_JOB,
    RECORDING_JOB,
    TASK_JOB,
    callback_url,
    enqueue_dispatch,
    twiml_url,
)
from courier.events import publish
from courier.jobs import JobContext, job_handler
from courier.jobs.outbox import enqueue
from courier.models.delivery import ProviderInbound
from courier.models.voice import (
    VoiceLineCall,
    VoiceQueueAgent,
    VoiceQueueEntry,
    VoiceRecording,
    VoiceSetting,
    VoiceTask,
)
from courier.providers.common import InboundEvent, Permanent, ProviderError
from courier.providers.inbound import InboundHandler, inbound_handler
from courier.providers.voice import VOICE
from courier.providers.voice.base import FINAL_CALL_STATUSES

log = logging.getLogger("courier.domains.voice.jobs")


def _event(
    session: AsyncSession,
    org: uuid.UUID,
    resource_type: str,
    verb: str,
    ident: uuid.UUID,
    individual: uuid.UUID | None = None,
    **data: Any,
) -> None:
    publish(
        session,
        organization_id=org,
        resource_type=resource_type,
        verb=verb,
        resource_id=ident,
        individual_ids=[individual] if individual else [],
        data={k.replace("_", "-"): v for k, v in data.items()},
    )


# --- the line ------------------------------------------------------------------------------------


@job_handler(LINE_JOB, max_attempts=8)
async def configure_line(job: JobContext) -> dict[str, Any] | None:
    """Point the line's number at the IVR (and its status callbacks at the inbound path)."""
    setting_id = uuid.UUID(str(job.payload["setting_id"]))
    setting = await fetch_row(job.session, VoiceSetting, job.organization_id, setting_id)
    if setting is None or setting.organization_id != job.organization_id:
        return {"skipped": "deleted"}
    phone, voice_url = setting.phone_number, twiml_url(job.settings, setting.id)
    adapter = job.providers.get(VOICE)

    async def call() -> dict[str, Any]:
        try:
            await adapter.configure_line(
                phone, voice_url=voice_url, status_callback_url=callback_url(job.settings, "line")
            )
        except Permanent as exc:
            return {"error": f"{exc.code}: {exc.message}"}
        return {"configured": phone}

    result = await job.step(f"configure-{phone}", call) or {}
    setting = await fetch_row(job.session, VoiceSetting, job.organization_id, setting_id)
    if setting is None or setting.phone_number != phone:
        return {"skipped": "changed"}
    if "error" in result:
        setting.line_state, setting.line_error = "failed", str(result["error"])[:255]
    else:
        setting.line_state, setting.line_error = "configured", None
    _event(
        job.session,
        setting.organization_id,
        "voice-settings",
        "updated",
        setting.id,
        line_state=setting.line_state,
    )
    return {"line-state": setting.line_state}


# --- the queue ----------------------------------------------------------------------------------


@job_handler(DISPATCH_JOB)
async def dispatch(job: JobContext) -> dict[str, Any] | None:
    """Hand waiting callers, longest-waiting first, to free agents, longest-free first. Each
    pairing is two conditional updates (the agent still available, the caller still waiting),
    so concurrent dispatches never give one caller two agents or one agent two callers."""
    session, org = job.session, job.organization_id
    setting_id = uuid.UUID(str(job.payload["setting_id"]))
    agents = await repo.available_agents(session, org, setting_id)
    if not agents:
        return {"paired": 0}  # nobody free: the next agent to join or be freed dispatches
    entries = await repo.waiting_entries(session, org, setting_id, len(agents))
    paired = 0
    now = now_ms()
    for entry in entries:
        while agents:
            agent = agents.pop(0)
            if not await repo.take_agent(session, org, agent.id, entry.id, now):
                continue  # another dispatch took this agent
            if not await repo.connect_entry(session, org, entry.id, agent.id, now):
                # The caller was taken or left: the agent stays free.
                await repo.free_agent(session, org, agent.id)
                agents.insert(0, agent)
                break
            paired += 1
            await enqueue(
                session,
                CONNECT_JOB,
                {"entry_id": entry.id},
                organization_id=org,
                dedupe_key=f"{CONNECT_JOB}:{entry.id}",
            )
            _event(session, org, "voice-queue-entries", "connected", entry.id,
                   entry.individual_id, agent_id=str(agent.id))  # fmt: skip
            _event(session, org, "voice-queue-agents", "busy", agent.id, entry_id=str(entry.id))
            break
        if not agents:
            break
    return {"paired": paired}


@job_handler(CONNECT_JOB, max_attempts=5)
async def connect(job: JobContext) -> dict[str, Any] | None:
    """Redirect the caller's live call to the TwiML that dials the agent."""
    entry_id = uuid.UUID(str(job.payload["entry_id"]))
    entry = await fetch_row(job.session, VoiceQueueEntry, job.organization_id, entry_id)
    if entry is None or entry.state != "connected" or entry.ended_at is not None:
        return {"skipped": "not connected"}
    sid, url = (
        entry.call_sid,
        twiml_url(job.settings, entry.setting_id, "connect", entry=str(entry.id)),
    )
    adapter = job.providers.get(VOICE)

    async def redirect() -> dict[str, Any]:
        try:
            await adapter.redirect(sid, url)
        except Permanent as exc:
            return {"error": f"{exc.code}: {exc.message}"}
        return {"redirected": sid}

    result = await job.step("redirect", redirect) or {}
    if "error" in result:
        entry = await fetch_row(job.session, VoiceQueueEntry, job.organization_id, entry_id)
        if entry is not None and entry.ended_at is None:
            await _ended(job.session, entry, "failed")
    return result


async def _free_agent(session: AsyncSession, entry: VoiceQueueEntry) -> None:
    if entry.agent_id is None:
        return
    agent = await fetch_row(session, VoiceQueueAgent, entry.organization_id, entry.agent_id)
    if agent is not None and agent.entry_id == entry.id:
        agent.entry_id = None
        if agent.state == "busy":
            agent.state, agent.free_since = "available", now_ms()
        agent.last_modified_at = now_ms()
        _event(session, agent.organization_id, "voice-queue-agents", agent.state, agent.id)
        await enqueue_dispatch(session, agent.organization_id, agent.setting_id)


async def _ended(session: AsyncSession, entry: VoiceQueueEntry, status: str) -> str:
    """The caller's call ended with ``status``: a waiting caller abandoned the queue; a
    connected one's agent is free again."""
    now = now_ms()
    if entry.state == "waiting":
        entry.state, entry.ended_at, entry.last_modified_at = "abandoned", now, now
        _event(session, entry.organization_id, "voice-queue-entries", "abandoned", entry.id,
               entry.individual_id, status=status)  # fmt: skip
        return "abandoned"
    if entry.ended_at is None:
        entry.ended_at, entry.last_modified_at = now, now
        _event(session, entry.organization_id, "voice-queue-entries", "ended", entry.id,
               entry.individual_id, status=status)  # fmt: skip
        await _free_agent(session, entry)
        return "ended"
    return "unchanged"


@job_handler(TASK_JOB, max_attempts=5)
async def run_task(job: JobContext) -> dict[str, Any] | None:
    task_id = uuid.UUID(str(job.payload["task_id"]))
    task = await fetch_row(job.session, VoiceTask, job.organization_id, task_id)
    if task is None or task.state in ("completed", "failed"):
        return {"skipped": True}
    task.state, task.last_modified_at = "running", now_ms()
    _event(job.session, task.organization_id, "voice-tasks", "running", task.id)
    sids = await repo.open_call_sids(job.session, job.organization_id, task.setting_id)
    adapter = job.providers.get(VOICE)

    async def ask() -> dict[str, Any]:
        found: dict[str, Any] = {}
        for sid in sids:
            try:
                status = await adapter.fetch(sid)
            except ProviderError as exc:
                found[sid] = f"error:{exc.code}"
                continue
            found[sid] = status.vendor_status if status is not None else None
        return {"statuses": found}

    asked = (await job.step("fetch", ask) or {}).get("statuses", {})
    counts = {"checked": len(sids), "abandoned": 0, "ended": 0, "live": 0, "unknown": 0}
    for sid, status in asked.items():
        if isinstance(status, str) and status.startswith("error:"):
            counts["unknown"] += 1
            continue
        if status is not None and status not in FINAL_CALL_STATUSES:
            counts["live"] += 1
            continue
        entry = await repo.entry_of_call(job.session, job.organization_id, sid)
        if entry is not None:
            outcome = await _ended(job.session, entry, status or "gone")
            if outcome in counts:
                counts[outcome] += 1
    task = await fetch_row(job.session, VoiceTask, job.organization_id, task_id)
    assert task is not None
    task.state, task.result, task.last_modified_at = "completed", counts, now_ms()
    _event(job.session, task.organization_id, "voice-tasks", "completed", task.id)
    return counts


# --- recordings ----------------------------------------------------------------------------------


def recording_key(recording: VoiceRecording) -> str:
    return f"orgs/{recording.organization_id}/voice-recordings/{recording.id}/file.wav"


@job_handler(RECORDING_JOB, max_attempts=8)
async def fetch_recording(job: JobContext) -> dict[str, Any] | None:
    """Download a finished recording from the voice service into storage, and transcribe it
    with the speech engine unless the voice service's transcription came first."""
    from courier.providers.speech import SPEECH
    from courier.providers.storage import storage_for

    recording_id = uuid.UUID(str(job.payload["recording_id"]))
    recording = await fetch_row(job.session, VoiceRecording, job.organization_id, recording_id)
    if recording is None or recording.state != "inprogress":
        return {"skipped": True}
    sid, key = recording.recording_sid, recording_key(recording)
    adapter = job.providers.get(VOICE)
    storage = storage_for(job.settings)
    needs_text = recording.transcription is None

    async def download() -> dict[str, Any]:
        try:
            audio = await adapter.recording(sid)
        except Permanent as exc:
            return {"error": f"{exc.code}: {exc.message}"}
        await storage.write(key, audio.audio, content_type=audio.content_type)
        out: dict[str, Any] = {"duration": round(audio.duration_seconds, 3)}
        if needs_text:
            try:
                heard = await job.providers.get(SPEECH).transcribe(audio.audio, locale="en-US")
                out["transcription"] = heard.text
            except ProviderError as exc:
                out["transcription-error"] = f"{exc.code}: {exc.message}"
        return out

    result = await job.step("download", download) or {}
    recording = await fetch_row(job.session, VoiceRecording, job.organization_id, recording_id)
    if recording is None:
        return {"skipped": "purged"}
    now = now_ms()
    if "error" in result:
        recording.state, recording.error = "failed", str(result["error"])[:255]
    else:
        recording.state, recording.storage_key = "completed", key
        recording.duration = float(result.get("duration") or 0)
        if recording.transcription is None and "transcription" in result:
            recording.transcription = str(result["transcription"])
            recording.transcription_state = "completed"
        elif recording.transcription is None and "transcription-error" in result:
            recording.transcription_state = "failed"
    recording.last_modified_at = now
    _event(job.session, recording.organization_id, "voice-recordings", recording.state,
           recording.id, recording.individual_id)  # fmt: skip
    return {"state": recording.state}


@job_handler(DELETE_RECORDING_JOB, max_attempts=10)
async def delete_recording(job: JobContext) -> dict[str, Any] | None:
    """A purged recording's file, and its copy at the voice service."""
    from courier.providers.storage import storage_for

    key, sid = job.payload.get("key"), job.payload.get("sid")
    if key:
        await storage_for(job.settings).delete(str(key))
    if sid:
        await job.providers.get(VOICE).delete_recording(str(sid))
    return {"deleted": True}


# --- callbacks through the inbound path ----------------------------------------------------------


def _call_sid(event: InboundEvent | ProviderInbound) -> str:
    raw = event.raw or {}
    return str(raw.get("CallSid") or "")


async def _resolve(session: AsyncSession, provider: str, event: InboundEvent) -> uuid.UUID | None:
    call = await repo.line_call(session, _call_sid(event))
    return call.organization_id if call is not None else None


async def _apply_status(job: JobContext, inbound: ProviderInbound) -> None:
    call = await repo.line_call(job.session, _call_sid(inbound))
    if call is None or call.organization_id != job.organization_id:
        return
    status = inbound.vendor_status or ""
    if call.status != status:
        call.status = status[:16]
        _event(job.session, call.organization_id, "voice-calls", status or "updated", call.id,
               setting_id=str(call.setting_id), call_sid=call.call_sid)  # fmt: skip
    if status in FINAL_CALL_STATUSES:
        call.ended_at = call.ended_at or utcnow()
        entry = await repo.entry_of_call(job.session, job.organization_id, call.call_sid)
        if entry is not None:
            await _ended(job.session, entry, status)
    inbound.applied_at = utcnow()


async def _recording(job: JobContext, call: VoiceLineCall, recording_sid: str) -> VoiceRecording:
    found = await repo.recording_by_sid(job.session, job.organization_id, recording_sid)
    if found is not None:
        return found
    entry = await repo.entry_state_of_call(job.session, job.organization_id, call.call_sid)
    recording = VoiceRecording(
        id=uuid.uuid4(),
        organization_id=call.organization_id,
        setting_id=call.setting_id,
        call_sid=call.call_sid,
        recording_sid=recording_sid[:64],
        phone_number=call.caller,
        individual_id=await individual_by_phone(job.session, call.organization_id, call.caller),
        kind="call" if entry == "connected" else "voicemail",
        state="inprogress",
        created_at=now_ms(),
        last_modified_at=now_ms(),
    )
    job.session.add(recording)
    await job.session.flush()
    _event(job.session, recording.organization_id, "voice-recordings", "created", recording.id,
           recording.individual_id)  # fmt: skip
    return recording


async def _apply_recording(job: JobContext, inbound: ProviderInbound) -> None:
    call = await repo.line_call(job.session, _call_sid(inbound))
    if call is None or call.organization_id != job.organization_id:
        return
    recording = await _recording(job, call, inbound.vendor_id or "")
    status = inbound.vendor_status or ""
    if recording.state == "inprogress":
        if status == "completed":
            await enqueue(
                job.session,
                RECORDING_JOB,
                {"recording_id": recording.id},
                organization_id=job.organization_id,
                dedupe_key=f"{RECORDING_JOB}:{recording.id}",
            )
        elif status in ("failed", "absent"):
            recording.state, recording.error = "failed", f"the voice service reported {status}"
            recording.last_modified_at = now_ms()
            _event(job.session, recording.organization_id, "voice-recordings", "failed",
                   recording.id, recording.individual_id)  # fmt: skip
    inbound.applied_at = utcnow()


async def _apply_transcription(job: JobContext, inbound: ProviderInbound) -> None:
    call = await repo.line_call(job.session, _call_sid(inbound))
    if call is None or call.organization_id != job.organization_id:
        return
    recording = await _recording(job, call, inbound.vendor_id or "")
    raw = inbound.raw or {}
    status = inbound.vendor_status or ""
    if status == "completed":
        recording.transcription = str(raw.get("TranscriptionText") or "")
        recording.transcription_state = "completed"
    elif recording.transcription is None:
        recording.transcription_state = "failed"
    recording.last_modified_at = now_ms()
    _event(job.session, recording.organization_id, "voice-recordings", "transcribed",
           recording.id, recording.individual_id)  # fmt: skip
    inbound.applied_at = utcnow()


# Beside the deliveries' status handler (calls placed as deliveries are theirs, not ours).
inbound_handler(VOICE.name, "status", InboundHandler(_resolve, _apply_status))
inbound_handler(VOICE.name, "recording", InboundHandler(_resolve, _apply_recording))
inbound_handler(VOICE.name, "transcription", InboundHandler(_resolve, _apply_transcription))
