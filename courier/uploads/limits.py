"""What an upload may be: the accepted types, the size of one file, and what the thing it
hangs on may carry (how many files, how many bytes together).

``COURIER_ATTACHMENT_ALLOWED_TYPES`` and ``COURIER_ATTACHMENT_MAX_BYTES`` hold for every kind;
a kind adds :class:`ParentLimits` through its declaration (an email: at most
``COURIER_EMAIL_ATTACHMENT_MAX_COUNT`` files and ``COURIER_EMAIL_ATTACHMENT_MAX_TOTAL_BYTES``).
"""

from __future__ import annotations

from dataclasses import dataclass

from courier.config import Settings
from courier.core.errors import ApiError, ErrorItem


@dataclass(frozen=True)
class Refusal:
    """Why a file is not accepted: the HTTP status and code of the answer, and a message."""

    status: int
    code: str
    detail: str

    def error(self, pointer: str | None = None) -> ApiError:
        return ApiError(self.status, [ErrorItem(self.detail, self.code, pointer=pointer)])


@dataclass(frozen=True)
class ParentLimits:
    """What one parent (an email ...) may carry, and the refusals that say so."""

    max_count: int
    max_total_bytes: int
    too_many: Refusal  # starting one more upload than max_count
    too_large: Refusal  # a file that fits alone but not with the parent's other files


def allowed_types(settings: Settings) -> frozenset[str]:
    return frozenset(
        t.strip().lower() for t in settings.attachment_allowed_types.split(",") if t.strip()
    )


def check_claimed_type(settings: Settings, content_type: str | None) -> None:
    """Refuse at once (415) a claimed content type that could never be accepted; the real type
    is still detected from the bytes when the upload is processed."""
    allowed = allowed_types(settings)
    if content_type is not None and content_type not in allowed:
        raise ApiError(
            415,
            [
                ErrorItem(
                    f"content-type {content_type} is not an accepted attachment type; "
                    "accepted: " + ", ".join(sorted(allowed)),
                    "unsupported-attachment-type",
                    pointer="/data/attributes/content-type",
                )
            ],
            {},
            True,
        )


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"


TOO_LARGE = "attachment-too-large"


def too_large(size: int, max_size: int) -> Refusal:
    return Refusal(
        400,
        TOO_LARGE,
        f"the file is {human_size(size)}; attachments may be at most {human_size(max_size)}",
    )
