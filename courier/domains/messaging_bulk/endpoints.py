"""Starting and finishing a bulk attachment's upload: the generic upload's two routes, for API
keys only (individual tokens cannot send bulk messages)."""

from courier.domains.messaging_bulk.resource import bulk_attachments
from courier.domains.messaging_bulk.schemas import BulkAttachmentCreate
from courier.uploads.routes import RouteText, upload_routes

router = upload_routes(
    bulk_attachments,
    BulkAttachmentCreate,
    individuals=False,
    start=RouteText(
        "Start a bulk-message attachment upload",
        """Create a pending attachment of a draft bulk message and a presigned upload: POST
        ``upload-url`` as multipart/form-data with every field of ``upload-data`` and then the file
        (part ``file``) before ``expiration-time`` (Unix seconds), then call ``process-upload``.
        The bulk message must still be a draft (409). A claimed ``content-type`` that is not
        accepted: 415.""",
    ),
    process=RouteText(
        "Finish a bulk attachment upload: verify, size, thumbnail",
        """Check the uploaded file as a messaging attachment's is checked (real type from the
        bytes: 415 when not accepted; size: 400; nothing uploaded yet: 409). A ready attachment is
        answered as it is; a rejected one: 409.""",
    ),
)
