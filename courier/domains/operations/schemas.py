from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from courier.core.types import Timestamp
from courier.jsonapi.documents import ReadAttributes

JobStateName = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobRead(ReadAttributes):
    kind: str = Field(description="What the job does, e.g. sms.send")
    state: JobStateName
    priority: int = Field(description="Higher runs first among due jobs")
    attempts: int = Field(description="Attempts started so far")
    max_attempts: int
    last_error: str | None = Field(description="The error of the latest failed attempt")
    run_at: Timestamp = Field(description="When the job is (or was) due")
    created_at: Timestamp
    started_at: Timestamp | None = Field(description="When the latest attempt started")
    finished_at: Timestamp | None
    result: dict[str, Any] | None = Field(description="What the handler returned")
    payload: dict[str, Any] = Field(description="Ids the job works on (never patient data)")
    dedupe_key: str | None
    lease_owner: str | None = Field(description="The replicator running the job, if running")
    lease_expires_at: Timestamp | None


class ReplicatorRead(ReadAttributes):
    classpath: str = Field(description="What the process runs, e.g. courier.jobs.worker.Worker")
    created_time: Timestamp = Field(description="When the process started")
    last_poll_time: Timestamp = Field(description="When the process last looked for work")
    hostname: str
    pid: int
    concurrency: int = Field(description="Jobs the process runs at once")
    stale: bool = Field(
        description="No poll for longer than the stale threshold: the process is probably gone"
    )
