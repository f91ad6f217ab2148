"""``/uploads/<key>``: the links of local storage, served by Courier itself.

``POST`` takes an upload as an S3 presigned POST does: multipart/form-data with the signed
fields the API handed out (``key``, ``expires``, ``max-size``, ``signature``) and then the file
(part ``file``); 204 when stored. ``GET ?expires=..&signature=..`` downloads an object through
a signed link. The signature is the credential: no Authorization header is needed. With
``COURIER_STORAGE=s3`` clients talk to the bucket instead and these paths answer 404.
Bodies here are raw (``courier.app.RAW_BODY_PREFIXES``), not JSON documents.
"""

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import FileResponse, Response

from courier.config import Settings
from courier.core.errors import ApiError, ErrorItem, bad_request, not_found
from courier.providers.storage import InvalidKeyError, LocalStorage, storage_for
from courier.providers.storage.local import LinkRefusedError

router = APIRouter(tags=["uploads"])

# Room for the form's fields and multipart framing around the file itself.
FORM_OVERHEAD = 64 * 1024
SIGNED_FIELDS = ("key", "expires", "max-size", "signature")


def _local(settings: Settings) -> LocalStorage:
    storage = storage_for(settings)
    if not isinstance(storage, LocalStorage):
        raise not_found("upload")
    return storage


def _refused(exc: LinkRefusedError) -> ApiError:
    return ApiError(exc.status, [ErrorItem(exc.detail, exc.code)])


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        [ErrorItem(f"the file exceeds the upload's limit of {limit} bytes", "payload-too-large")],
    )


@router.post(
    "/uploads/{key:path}",
    status_code=204,
    response_model=None,
    summary="Upload a file to local storage through a signed form (as an S3 presigned POST)",
    include_in_schema=True,
    responses={
        400: {"description": "Malformed form or missing file"},
        403: {"description": "Invalid or expired signature"},
        404: {"description": "No such upload (local storage is not configured)"},
        413: {"description": "The file exceeds the signed size limit"},
        415: {"description": "The body is not multipart/form-data"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [*SIGNED_FIELDS, "file"],
                        "properties": {
                            **{name: {"type": "string", "minLength": 1} for name in SIGNED_FIELDS},
                            "file": {"type": "string", "format": "binary"},
                        },
                    }
                }
            },
        }
    },
    operation_id="upload-local-storage",
)
async def upload(key: str, request: Request) -> Response:
    """Store the form's ``file`` part under ``key`` if the signed fields allow it."""
    settings: Settings = request.app.state.settings
    storage = _local(settings)
    ceiling = settings.attachment_max_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > ceiling:
        raise _too_large(settings.attachment_max_bytes)
    received = 0

    async def bounded_receive() -> Any:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > ceiling:
            raise _too_large(settings.attachment_max_bytes)
        return message

    bounded = Request(request.scope, bounded_receive)
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(
            415,
            [ErrorItem("an upload is multipart/form-data", "unsupported-media-type")],
        )
    try:
        form = await bounded.form(max_files=1, max_fields=len(SIGNED_FIELDS) + 8)
    except ApiError:
        raise
    except Exception as exc:  # starlette's MultiPartException and malformed bodies
        raise bad_request(f"malformed upload form: {exc}", "invalid-upload-form") from exc
    try:
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        try:
            limit = storage.verify_upload(key, fields)
        except LinkRefusedError as exc:
            raise _refused(exc) from exc
        except InvalidKeyError as exc:
            raise not_found("upload") from exc
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise bad_request("the form has no file part named 'file'", "missing-file")
        size = file.size if file.size is not None else 0
        if size > limit:
            raise _too_large(limit)
        if size == 0:
            raise bad_request("the uploaded file is empty", "empty-file")
        await file.seek(0)
        await storage.store_file(key, file.file)
    finally:
        await form.close()
    return Response(status_code=204)


@router.get(
    "/uploads/{key:path}",
    response_model=None,
    summary="Download a file from local storage through a signed link",
    responses={
        200: {"description": "The file"},
        403: {"description": "Invalid or expired signature"},
        404: {"description": "No such file"},
    },
    operation_id="download-local-storage",
)
async def download(key: str, request: Request) -> Response:
    """Serve the object at ``key`` while the link's signature and expiry hold."""
    storage = _local(request.app.state.settings)
    try:
        content_type, disposition = storage.verify_download(key, request.query_params)
        path = storage.path_of(key)
    except LinkRefusedError as exc:
        raise _refused(exc) from exc
    except (InvalidKeyError, ValueError) as exc:
        raise not_found("file") from exc
    if not path.is_file():
        raise not_found("file")
    headers = {
        # The bytes are a patient's: no shared caches, no sniffing, no active content.
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if disposition:
        headers["Content-Disposition"] = disposition
    return FileResponse(
        path,
        media_type=content_type or "application/octet-stream",
        headers=headers,
    )
