"""``POST /v1/jobs/{id}/retry/``: give a failed job another set of attempts."""

from fastapi import APIRouter, Depends

from courier.core.auth import Permission
from courier.core.handlers import JsonResponse
from courier.domains.operations.resource import jobs
from courier.domains.operations.service import JobService
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.routes import ERROR_RESPONSES, path_uuid, render_one

router = APIRouter(tags=["operations"])
_service: JobService = jobs.service  # type: ignore[assignment]


@router.post(
    "/v1/jobs/{id}/retry/",
    response_model=None,
    status_code=201,
    summary="Retry a failed job",
    responses={201: {"description": "The job, queued again"}, **ERROR_RESPONSES},
    operation_id="retry-v1-jobs",
)
async def retry_job(
    id: str,
    ctx: Context = Depends(context_dependency(Permission.MANAGE, individual_allowed=False)),
) -> JsonResponse:
    """Re-queue a failed job with a fresh set of attempts, due now (201). A job that is not
    failed (queued, running, succeeded, cancelled): 409."""
    job = await _service.do_retry(ctx, path_uuid(id, "job"))
    return JsonResponse(await render_one(ctx, jobs, job), status_code=201)
