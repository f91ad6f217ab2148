"""Voice lines: ``/v1/voice-settings/`` (with ``run-task``), ``/v1/voice-tasks/{id}/``,
``/v1/voice-queue-entries/``, ``/v1/voice-queue-agents/`` (DELETE: the agent leaves) and
``/v1/voice-recordings/``. The IVR webhook, the recording downloads and the TTS endpoint are in
``endpoints.py``."""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.voice.schemas import (
    RunTaskBody,
    VoiceQueueAgentCreate,
    VoiceQueueAgentRead,
    VoiceQueueEntryRead,
    VoiceRecordingRead,
    VoiceSettingCreate,
    VoiceSettingRead,
    VoiceSettingUpdate,
    VoiceTaskRead,
)
from courier.domains.voice.service import (
    VoiceQueueAgentService,
    VoiceQueueEntryService,
    VoiceRecordingService,
    VoiceSettingService,
    VoiceTaskService,
)
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.voice import (
    VoiceQueueAgent,
    VoiceQueueEntry,
    VoiceRecording,
    VoiceSetting,
    VoiceTask,
)

TAG = "voice"
RECORDING_STATES = ("inprogress", "completed", "failed")


voice_tasks = register(
    ResourceSpec(
        type_name="voice-tasks",
        model=VoiceTask,
        read_schema=VoiceTaskRead,
        service=VoiceTaskService(),
        ops=frozenset({Op.GET}),
        summaries={Op.GET: "Get one voice task (the result of run-task)"},
        singular="voice task",
        tag=TAG,
    )
)

setting_service = VoiceSettingService()

voice_settings = register(
    ResourceSpec(
        type_name="voice-settings",
        model=VoiceSetting,
        read_schema=VoiceSettingRead,
        create_schema=VoiceSettingCreate,
        update_schema=VoiceSettingUpdate,
        service=setting_service,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE}),
        sorts={"created-at": VoiceSetting.created_at},
        default_sort=[("created-at", False)],
        summaries={
            Op.LIST: "List voice settings (organization-id)",
            Op.GET: "Get one voice setting",
            Op.CREATE: (
                "Create a voice line (phone-number, forward-number, wait/recording messages)"
            ),
            Op.UPDATE: "Modify a voice setting",
        },
        actions=[
            ActionSpec(
                "run-task",
                setting_service.do_run_task,
                summary="Run a maintenance task (refresh_queue_entries); returns a voice-task",
                body=RunTaskBody,
                permission=Permission.MANAGE,
                response=voice_tasks,
            )
        ],
        singular="voice setting",
        tag=TAG,
    )
)

voice_queue_entries = register(
    ResourceSpec(
        type_name="voice-queue-entries",
        model=VoiceQueueEntry,
        read_schema=VoiceQueueEntryRead,
        service=VoiceQueueEntryService(),
        ops=frozenset({Op.LIST, Op.GET}),
        filters=[
            q.uuid_eq(
                "setting-id", VoiceQueueEntry.setting_id, "Entries of this line", required=True
            ),
            q.enum(
                "filter[state]",
                VoiceQueueEntry.state,
                ["waiting", "connected", "abandoned"],
                "Entries in this state",
            ),
        ],
        sorts={"queue-time": VoiceQueueEntry.enqueued_at},
        default_sort=[("queue-time", False)],
        summaries={
            Op.LIST: "Callers waiting in a queue with position and wait time (setting-id required)",
            Op.GET: "Get one queue entry",
        },
        singular="voice queue entry",
        tag=TAG,
    )
)

agent_service = VoiceQueueAgentService()

voice_queue_agents = register(
    ResourceSpec(
        type_name="voice-queue-agents",
        model=VoiceQueueAgent,
        read_schema=VoiceQueueAgentRead,
        create_schema=VoiceQueueAgentCreate,
        service=agent_service,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE}),
        filters=[
            q.uuid_eq(
                "setting-id", VoiceQueueAgent.setting_id, "Agents of this line", required=True
            ),
        ],
        sorts={"created-at": VoiceQueueAgent.created_at},
        default_sort=[("created-at", False)],
        permissions={Op.CREATE: Permission.COMMUNICATE},
        summaries={
            Op.LIST: "Agents serving a queue (setting-id required)",
            Op.GET: "Get one agent",
            Op.CREATE: "An agent joins a queue (browser or PSTN phone)",
        },
        actions=[
            ActionSpec(
                "",
                agent_service.do_leave,
                summary="An agent leaves a queue",
                method="DELETE",
                permission=Permission.COMMUNICATE,
            )
        ],
        singular="voice queue agent",
        tag=TAG,
    )
)

voice_recordings = register(
    ResourceSpec(
        type_name="voice-recordings",
        model=VoiceRecording,
        read_schema=VoiceRecordingRead,
        service=VoiceRecordingService(),
        ops=frozenset({Op.LIST, Op.GET}),
        filters=[
            q.uuid_eq(
                "filter[individual-id]", VoiceRecording.individual_id, "The caller's recordings"
            ),
            q.uuid_eq("filter[setting-id]", VoiceRecording.setting_id, "Recordings of a line"),
            q.one_of("filter[states]", VoiceRecording.state, RECORDING_STATES),
        ],
        sorts={"created-at": VoiceRecording.created_at},
        default_sort=[("created-at", True)],
        summaries={
            Op.LIST: "List recordings (organization-id; filter[individual-id], "
            "filter[setting-id], filter[states])",
            Op.GET: "Get one recording with transcription",
        },
        singular="voice recording",
        tag=TAG,
    )
)
