from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.operations.schemas import JobRead, ReplicatorRead
from courier.domains.operations.service import JobService, ReplicatorService
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec, EmptyBody
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.job import Job, JobState
from courier.models.replicator import Replicator

job_service = JobService()

jobs = register(
    ResourceSpec(
        type_name="jobs",
        model=Job,
        read_schema=JobRead,
        service=job_service,
        ops=frozenset({Op.LIST, Op.GET}),
        filters=[
            q.enum("filter[state]", Job.state, [s.value for s in JobState], "Jobs in this state"),
            q.eq("filter[kind]", Job.kind, q.parse_text(100), "Jobs of this kind"),
            q.time_window("created-at", Job.created_at),
        ],
        sorts={"created-at": Job.created_at, "run-at": Job.run_at, "priority": Job.priority},
        default_sort=[("created-at", True)],
        permissions={Op.LIST: Permission.MANAGE, Op.GET: Permission.MANAGE},
        tag="operations",
        summaries={
            Op.LIST: "Background jobs with state, attempts, last error (admin)",
            Op.GET: "Get one job",
        },
        singular="job",
        actions=[
            ActionSpec(
                "retry",
                job_service.do_retry,
                summary="Retry a failed job",
                body=EmptyBody,
                permission=Permission.MANAGE,
            )
        ],
    )
)

# Worker processes serve every organization: not tenant rows. Any administrator may see them
# (they carry no organization's data: host, pid, times).
replicators = register(
    ResourceSpec(
        type_name="replicators",
        model=Replicator,
        read_schema=ReplicatorRead,
        service=ReplicatorService(),
        ops=frozenset({Op.LIST, Op.GET}),
        sorts={"created-time": Replicator.created_at, "last-poll-time": Replicator.last_poll_at},
        default_sort=[("created-time", False)],
        permissions={Op.LIST: Permission.MANAGE, Op.GET: Permission.MANAGE},
        tenant=False,
        audited=False,
        tag="operations",
        summaries={
            Op.LIST: "Background pollers/workers with last-poll-time",
            Op.GET: "Get one replicator",
        },
        singular="replicator",
    )
)
