"""Starting and finishing an attachment upload (the generic upload's two routes).

1. ``POST /v1/messaging-attachments/`` creates a pending attachment and answers where to upload
   the file (``upload-url`` and the form fields ``upload-data``, valid until
   ``expiration-time``); the client uploads the bytes there itself.
2. ``POST /v1/messaging-attachments/{id}/process-upload/`` checks what was uploaded: the real
   type (from the bytes), the allowlist and the size limit; a thumbnail for images. The
   attachment becomes ready, or is rejected and its file deleted.
"""

from courier.domains.messaging_attachments.resource import attachments
from courier.domains.messaging_attachments.schemas import AttachmentCreate
from courier.uploads.routes import RouteText, upload_routes

router = upload_routes(
    attachments,
    AttachmentCreate,
    individuals=True,
    start=RouteText(
        "Start an upload: returns upload-url, upload-data, expiration-time",
        """Create a pending attachment of a message the caller may see, and a presigned upload:
        POST ``upload-url`` as multipart/form-data with every field of ``upload-data`` and then
        the file (part ``file``) before ``expiration-time`` (Unix seconds), then call
        ``process-upload``. A claimed ``content-type`` that is not accepted: 415.""",
    ),
    process=RouteText(
        "Finish an upload: verify, size, thumbnail",
        """Check the uploaded file: its real content type (from its bytes, not its name or the
        claimed type) must be accepted (else 415) and its size within the limit (else 400). The
        attachment becomes ready, with a thumbnail for images; a refused file is deleted and the
        attachment marked rejected. Nothing uploaded yet: 409. Repeating the call on a ready
        attachment answers it as it is.""",
    ),
)
