"""The generic two-step upload, over every kind of it: messaging, bulk and email attachments.

What one kind does the others do too: an upload started but never uploaded or processed is
removed with its stored objects once its link has expired and the configured grace
(``COURIER_ATTACHMENT_CLEANUP_GRACE_SECONDS``) has passed, while a processed one keeps its row
and its file; starting and processing land in the audit log; purging an individual deletes the
files of each kind; every worker claims every kind's jobs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update

import courier.uploads.workers  # noqa: F401  (registers every kind of upload's jobs)
from courier.config import Settings
from courier.core.db import commit
from courier.core.tenancy import scoped
from courier.domains.email.uploads import email_uploads
from courier.domains.messaging_attachments.uploads import messaging_uploads
from courier.domains.messaging_bulk.uploads import bulk_uploads
from courier.jobs import Job, enqueue, run_until_idle
from courier.providers.storage import storage_for
from courier.uploads.jobs import cleanup_window
from courier.uploads.kind import UploadKind
from tests.conftest import Org, doc
from tests.factories import make_individual_id, message_row
from tests.test_attachments import ELF, pdf_bytes, png_bytes

REPO = Path(__file__).resolve().parent.parent
GRACE = 120  # seconds: the grace these tests configure


@dataclass
class Flow:
    """How a client uses one kind of upload: its collection, what it hangs on, its link."""

    kind: UploadKind[Any]
    parent_attribute: str
    link_attribute: str  # the attribute holding the download link of a ready file
    link_params: dict[str, str]

    @property
    def path(self) -> str:
        return f"/v1/{self.kind.name}/"


MESSAGING = Flow(messaging_uploads, "message-id", "url", {})
BULK = Flow(bulk_uploads, "bulk-message-id", "url", {})
EMAIL = Flow(email_uploads, "email-id", "download-link", {"with-link": "true"})


async def new_bulk(client: httpx.AsyncClient, org: Org, sender: str | None = None) -> str:
    sender = sender or await make_individual_id(client, org, **{"account-type": "provider"})
    created = await client.post(
        "/v1/messaging-bulk-messages/",
        headers=org.staff,
        json=doc(
            "messaging-bulk-messages",
            {
                "sender-individual-id": sender,
                "individual-ids": [await make_individual_id(client, org)],
                "message": "See the attached plan",
                "draft": True,
            },
        ),
    )
    assert created.status_code == 201, created.text
    ident: str = created.json()["data"]["id"]
    return ident


async def new_email(client: httpx.AsyncClient, org: Org, individual: str | None = None) -> str:
    individual = individual or await make_individual_id(client, org)
    created = await client.post(
        "/v1/user-emails/",
        headers=org.staff,
        json=doc(
            "user-emails",
            {
                "to": f"{uuid.uuid4().hex[:12]}@patients.example",  # the sandbox is shared
                "subject": "Your plan",
                "message": "Attached.",
                "individual-id": individual,
            },
        ),
    )
    assert created.status_code == 201, created.text
    ident: str = created.json()["data"]["id"]
    return ident


PARENTS: dict[str, Callable[[httpx.AsyncClient, Org], Awaitable[str]]] = {
    MESSAGING.kind.name: lambda client, org: message_row(client, org),
    BULK.kind.name: new_bulk,
    EMAIL.kind.name: new_email,
}


async def start(
    client: httpx.AsyncClient, org: Org, flow: Flow, parent: str, filename: str
) -> dict[str, Any]:
    started = await client.post(
        flow.path,
        headers=org.staff,
        json=doc(flow.kind.name, {flow.parent_attribute: parent, "filename": filename}),
    )
    assert started.status_code == 201, started.text
    data: dict[str, Any] = started.json()["data"]
    return data


async def upload(client: httpx.AsyncClient, started: dict[str, Any], content: bytes) -> None:
    stored = await client.post(
        started["upload-url"], data=started["upload-data"], files={"file": ("f", content)}
    )
    assert stored.status_code == 204, stored.text


async def process(client: httpx.AsyncClient, org: Org, flow: Flow, ident: str) -> httpx.Response:
    return await client.post(f"{flow.path}{ident}/process-upload/", headers=org.staff, json={})


async def attributes(client: httpx.AsyncClient, org: Org, flow: Flow, ident: str) -> dict[str, Any]:
    found = await client.get(f"{flow.path}{ident}/", headers=org.staff, params=flow.link_params)
    assert found.status_code == 200, found.text
    values: dict[str, Any] = found.json()["data"]["attributes"]
    return values


async def expire(app: Any, org: Org, flow: Flow, ident: str, ago: timedelta) -> None:
    """Let the upload link of ``ident`` have expired ``ago``."""
    model = flow.kind.model
    organization = uuid.UUID(org.id)
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            scoped(update(model).where(model.id == uuid.UUID(ident)), model, organization).values(
                upload_expires_at=datetime.now(UTC) - ago
            )
        )
        await commit(session)


async def upload_key_of(app: Any, org: Org, flow: Flow, ident: str) -> str | None:
    model = flow.kind.model
    async with app.state.database.sessionmaker() as session:
        stmt = scoped(
            select(model.upload_key).where(model.id == uuid.UUID(ident)),
            model,
            uuid.UUID(org.id),
        )
        key: str | None = (await session.execute(stmt)).scalar_one()
        return key


async def test_stale_uploads_of_every_kind_are_removed_and_processed_ones_kept(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    saved = settings.attachment_cleanup_grace_seconds
    settings.attachment_cleanup_grace_seconds = GRACE
    try:
        await _stale_uploads_removed(client, org, app, settings)
    finally:
        settings.attachment_cleanup_grace_seconds = saved


async def _stale_uploads_removed(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    storage = storage_for(settings)
    organization = uuid.UUID(org.id)
    closed_long_ago = timedelta(seconds=GRACE + 60)
    picture = png_bytes((120, 80))
    uploads: dict[str, dict[str, str]] = {}
    for flow in (MESSAGING, BULK, EMAIL):
        parent = await PARENTS[flow.kind.name](client, org)
        never = await start(client, org, flow, parent, "never.pdf")
        stale = await start(client, org, flow, parent, "stale.pdf")
        await upload(client, stale, pdf_bytes())
        late = await start(client, org, flow, parent, "late.pdf")
        await upload(client, late, pdf_bytes())
        fresh = await start(client, org, flow, parent, "fresh.pdf")
        await upload(client, fresh, pdf_bytes())
        done = await start(client, org, flow, parent, "done.png")
        await upload(client, done, picture)
        processed = await process(client, org, flow, done["id"])
        assert processed.status_code == 201, processed.text
        await upload(client, done, b"a second upload, never read\n")
        uploads[flow.kind.name] = {
            "never": never["id"],
            "stale": stale["id"],
            "late": late["id"],
            "fresh": fresh["id"],
            "done": done["id"],
        }

        # Starting an upload scheduled its kind's cleanup for when the window and the
        # configured grace have closed.
        model = flow.kind.model
        async with app.state.database.sessionmaker() as session:
            stmt = scoped(
                select(model.upload_expires_at).where(model.id == uuid.UUID(never["id"])),
                model,
                organization,
            )
            expires = (await session.execute(stmt)).scalar_one()
            window = cleanup_window(expires + timedelta(seconds=GRACE))
            job = (
                await session.execute(
                    scoped(
                        select(Job).where(Job.dedupe_key == f"{flow.kind.cleanup_job}:{window}"),
                        Job,
                        organization,
                    )
                )
            ).scalar_one()
            assert job.kind == flow.kind.cleanup_job and job.state == "queued"
            assert job.run_at >= expires + timedelta(seconds=GRACE)

        for name in ("never", "stale", "done"):
            await expire(app, org, flow, uploads[flow.kind.name][name], closed_long_ago)
        await expire(app, org, flow, late["id"], timedelta(seconds=GRACE // 2))

    async with app.state.database.sessionmaker() as session:
        for flow in (MESSAGING, BULK, EMAIL):
            await enqueue(session, flow.kind.cleanup_job, {}, organization_id=organization)
        await commit(session)
    cleanups = [flow.kind.cleanup_job for flow in (MESSAGING, BULK, EMAIL)]
    assert await run_until_idle(app.state.database, settings, kinds=cleanups) >= 3

    for flow in (MESSAGING, BULK, EMAIL):
        ids = uploads[flow.kind.name]
        keys = flow.kind.keys
        # Never uploaded, or uploaded and never processed: row and objects gone.
        for name in ("never", "stale"):
            gone = await client.get(f"{flow.path}{ids[name]}/", headers=org.staff)
            assert gone.status_code == 404, (flow.kind.name, name, gone.text)
            for key in keys.own(organization, uuid.UUID(ids[name])):
                assert await storage.head(key) is None, key
        # Expired within the grace: kept, and a late process-upload still succeeds.
        assert (await attributes(client, org, flow, ids["late"]))["status"] == "pending"
        late = await process(client, org, flow, ids["late"])
        assert late.status_code == 201, late.text
        assert late.json()["data"]["attributes"]["status"] == "ready"
        # Still within its window: untouched.
        assert (await attributes(client, org, flow, ids["fresh"]))["status"] == "pending"
        assert await storage.head(keys.upload(organization, uuid.UUID(ids["fresh"]))) is not None
        # Processed: the row and its verified file stay; only the second upload went.
        done = await attributes(client, org, flow, ids["done"])
        assert done["status"] == "ready"
        assert (await client.get(done[flow.link_attribute])).content == picture
        assert await storage.head(keys.upload(organization, uuid.UUID(ids["done"]))) is None
        assert await upload_key_of(app, org, flow, ids["done"]) is None


async def test_a_stale_upload_no_longer_holds_an_email_back(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    email = await new_email(client, org)
    forgotten = await start(client, org, EMAIL, email, "forgotten.pdf")
    blocked = await client.post(f"/v1/user-emails/{email}/send/", headers=org.staff)
    assert blocked.status_code == 409
    assert blocked.json()["errors"][0]["code"] == "attachment-not-ready"

    grace = timedelta(seconds=settings.attachment_cleanup_grace_seconds)
    await expire(app, org, EMAIL, forgotten["id"], grace + timedelta(minutes=1))
    async with app.state.database.sessionmaker() as session:
        await enqueue(session, email_uploads.cleanup_job, {}, organization_id=uuid.UUID(org.id))
        await commit(session)
    await run_until_idle(app.state.database, settings, kinds=[email_uploads.cleanup_job])

    sent = await client.post(f"/v1/user-emails/{email}/send/", headers=org.staff)
    assert sent.status_code == 201, sent.text


async def test_purging_an_individual_deletes_the_files_of_every_kind(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    import courier.domains.purges.jobs  # noqa: F401  (registers the purge job)
    from courier.domains.purges.service import PURGE_JOB

    person = await make_individual_id(client, org, **{"account-type": "provider"})
    parents = {
        MESSAGING.kind.name: await message_row(client, org, [person], author_id=person),
        BULK.kind.name: await new_bulk(client, org, sender=person),
        EMAIL.kind.name: await new_email(client, org, individual=person),
    }
    kept_parent = await message_row(client, org)
    uploaded: dict[str, str] = {}
    for flow in (MESSAGING, BULK, EMAIL):
        started = await start(client, org, flow, parents[flow.kind.name], "plan.png")
        await upload(client, started, png_bytes((64, 64)))
        assert (await process(client, org, flow, started["id"])).status_code == 201
        uploaded[flow.kind.name] = started["id"]
    kept = await start(client, org, MESSAGING, kept_parent, "someone-else.png")
    await upload(client, kept, png_bytes((64, 64)))
    assert (await process(client, org, MESSAGING, kept["id"])).status_code == 201

    purge = await client.post(
        "/v1/purge-data/",
        headers=org.admin,
        json=doc("system-purges", {"entity-type": "individual", "entity-id": person}),
    )
    assert purge.status_code == 201, purge.text
    deletions = [flow.kind.delete_files_job for flow in (MESSAGING, BULK, EMAIL)]
    await run_until_idle(app.state.database, settings, kinds=[PURGE_JOB, *deletions])
    receipt = await client.get(f"/v1/purge-data/{purge.json()['data']['id']}/", headers=org.admin)
    counts = receipt.json()["data"]["attributes"]["counts"]
    assert receipt.json()["data"]["attributes"]["state"] == "completed", receipt.text
    assert counts["messaging_attachments"] == 1
    assert counts["messaging_bulk_attachments"] == 1
    assert counts["user_email_attachments"] == 1

    storage = storage_for(settings)
    organization = uuid.UUID(org.id)
    for flow in (MESSAGING, BULK, EMAIL):
        ident = uploaded[flow.kind.name]
        assert (await client.get(f"{flow.path}{ident}/", headers=org.staff)).status_code == 404
        for key in flow.kind.keys.own(organization, uuid.UUID(ident)):
            assert await storage.head(key) is None, key
    assert (await attributes(client, org, MESSAGING, kept["id"]))["status"] == "ready"
    kept_file = MESSAGING.kind.keys.file(organization, uuid.UUID(kept["id"]))
    assert await storage.head(kept_file) is not None


async def audit_of(client: httpx.AsyncClient, org: Org, ident: str) -> list[tuple[str, list[str]]]:
    """The audit log's entries for one resource, oldest first: (action, changed fields)."""
    listed = await client.get(
        "/v1/audit-events/",
        headers=org.admin,
        params={"filter[resource-id]": ident, "sort": "occurred-at"},
    )
    assert listed.status_code == 200, listed.text
    return [
        (item["attributes"]["action"], item["attributes"]["changed-fields"])
        for item in listed.json()["data"]
    ]


async def test_every_kind_records_who_started_and_processed_an_upload(
    client: httpx.AsyncClient, org: Org
) -> None:
    """Starting and processing an upload are changes of the upload resource: each lands in
    the audit log (field names only), a refused file as well as an accepted one."""
    for flow in (MESSAGING, BULK, EMAIL):
        parent = await PARENTS[flow.kind.name](client, org)
        accepted = await start(client, org, flow, parent, "plan.png")
        assert await audit_of(client, org, accepted["id"]) == [
            ("created", sorted([flow.parent_attribute, "filename"]))
        ]
        await upload(client, accepted, png_bytes((32, 32)))
        assert (await process(client, org, flow, accepted["id"])).status_code == 201
        assert (await audit_of(client, org, accepted["id"]))[1:] == [
            ("updated", sorted(flow.kind.ready_fields))
        ], flow.kind.name

        refused = await start(client, org, flow, parent, "tool.png")
        await upload(client, refused, ELF)
        answer = await process(client, org, flow, refused["id"])
        assert answer.status_code == 415, answer.text
        assert (await attributes(client, org, flow, refused["id"]))["status"] == "rejected"
        assert (await audit_of(client, org, refused["id"]))[1:] == [
            ("updated", sorted(flow.kind.rejected_fields))
        ], flow.kind.name


def test_every_worker_claims_every_kind_of_upload_job(tmp_path: Path) -> None:
    """A standalone ``courier worker`` imports only job modules: it must still know every
    kind's cleanup and delete-files jobs (it once missed the email attachments')."""
    script = (
        "from courier.config import Settings\n"
        "from courier.jobs.registry import HANDLERS, load_job_modules\n"
        "load_job_modules(Settings())\n"
        "print(' '.join(sorted(k for k in HANDLERS if k.endswith(('.cleanup', '.delete-files')))))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "COURIER_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    claimed = set(done.stdout.split())
    for flow in (MESSAGING, BULK, EMAIL):
        assert {flow.kind.cleanup_job, flow.kind.delete_files_job} <= claimed
