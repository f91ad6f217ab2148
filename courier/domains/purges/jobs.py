"""The purge job: every purge hook of the entity type, each as one idempotent job step.

Each hook's changes commit together with the record of its step (and the receipt's progress),
so a worker that dies mid-purge leaves the finished hooks finished: the retry skips them, runs
the rest, and the counts add up to what was removed once. With ``archive``, each hook writes its
rows to a part file first (rewritten if its step is retried, so nothing is doubled or missed);
a last step joins the parts, in hook order, into ``<data_dir>/archives/<purge id>.jsonl.gz``.
The archive directory must be shared by every worker (or the purge run where it was started):
a part written by another machine is missing, and the purge then fails rather than archive
less than it removed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from courier.core.time import utcnow
from courier.domains.purges import repository as repo
from courier.domains.purges.service import PURGE_JOB, TYPE_NAME, parse_entity_id
from courier.jobs import JobContext, PermanentJobError, job_handler
from courier.jsonapi.changes import Actor, change, write_changes
from courier.models.system_purge import SystemPurge
from courier.purge import ArchiveWriter, Registration, hooks_for, load_purge_hooks

ARCHIVE_STEP = "purge:archive"


def archive_dir(job: JobContext) -> Path:
    return Path(job.settings.data_dir) / "archives"


def archive_path(directory: Path, purge_id: uuid.UUID) -> Path:
    return directory / f"{purge_id}.jsonl.gz"


def part_path(directory: Path, purge_id: uuid.UUID, name: str) -> Path:
    return directory / f"{purge_id}.parts" / f"{name}.jsonl.gz"


def _step_name(registration: Registration) -> str:
    return f"purge:{registration.name}"


@job_handler(PURGE_JOB)
async def run_purge(job: JobContext) -> dict[str, Any] | None:
    load_purge_hooks()
    purge_id = uuid.UUID(str(job.payload["purge_id"]))
    purge = await repo.purge(job.session, job.organization_id, purge_id)
    if purge is None:
        raise PermanentJobError("the purge no longer exists")
    if purge.state == "completed":
        return {"purge-id": str(purge.id), "counts": purge.counts}
    entity_id = parse_entity_id(purge.entity_type, purge.entity_id)
    registrations = hooks_for(purge.entity_type)
    if purge.state != "running":
        purge.state = "running"
        purge.started_at = utcnow()
    done = list(purge.steps_done or [])
    purge.steps = [*done, *(r.name for r in registrations if r.name not in done)]
    directory = archive_dir(job)

    for registration in registrations:

        async def run_hook(registration: Registration = registration) -> dict[str, Any]:
            assert purge is not None
            writer = (
                ArchiveWriter(registration.name, part_path(directory, purge_id, registration.name))
                if purge.archive
                else None
            )
            try:
                counts = await registration.hook(
                    job.session, job.organization_id, entity_id, writer
                )
            finally:
                if writer is not None:
                    writer.close()
            counts = {str(k): int(v) for k, v in counts.items()}
            totals = dict(purge.counts or {})
            for table, count in counts.items():
                totals[table] = int(totals.get(table, 0)) + count
            # Committed with the step's record: progress and effects land together.
            purge.counts = totals
            purge.steps_done = [*(purge.steps_done or []), registration.name]
            return {"counts": counts}

        await job.step(_step_name(registration), run_hook)

    if purge.archive:

        async def assemble() -> dict[str, Any]:
            assert purge is not None
            return {"location": str(_join_parts(directory, purge_id, list(purge.steps_done)))}

        joined = await job.step(ARCHIVE_STEP, assemble)
        assert joined is not None
        purge.archive_location = str(joined["location"])
        shutil.rmtree(directory / f"{purge_id}.parts", ignore_errors=True)

    purge.state = "completed"
    purge.finished_at = utcnow()
    purge.error = None
    _record_completed(job, purge)
    return {"purge-id": str(purge.id), "counts": purge.counts}


def _record_completed(job: JobContext, purge: SystemPurge) -> None:
    """The audit row (entity type and id, counts) and the event of a finished purge."""
    write_changes(
        job.session,
        [
            change(
                TYPE_NAME,
                purge.id,
                "completed",
                details={
                    "entity-type": purge.entity_type,
                    "entity-id": purge.entity_id,
                    "counts": purge.counts,
                },
                data={"state": "completed"},
            )
        ],
        actor=Actor(purge.requested_by_type, purge.requested_by),
        request_id=None,
        organization_id=job.organization_id,
    )


def _join_parts(directory: Path, purge_id: uuid.UUID, hooks: list[str]) -> Path:
    """Concatenate the parts (gzip members concatenate into one valid gzip file)."""
    target = archive_path(directory, purge_id)
    missing = [name for name in hooks if not part_path(directory, purge_id, name).exists()]
    if missing:
        if target.exists():  # joined by an earlier attempt that died before recording it
            return target
        raise RuntimeError(
            "archive parts missing for hooks " + ", ".join(missing) + ": the archive directory "
            "must be shared by every worker"
        )
    temporary = target.with_name(target.name + ".tmp")
    with temporary.open("wb") as out:
        for name in hooks:
            with part_path(directory, purge_id, name).open("rb") as part:
                shutil.copyfileobj(part, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)
    return target
