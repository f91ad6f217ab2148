"""What an uploaded file really is, whatever its name or claimed type; and its thumbnail.

The content type comes from the bytes (``filetype``'s signatures; OOXML and OpenDocument
recognised from their zip members; plain text when the whole file is UTF-8 without control
characters). Images must also decode with Pillow, restricted to the format their signature
names, so a file that only wears an image's header is refused. CPU-bound: call these in a
worker thread.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache

from courier.uploads.limits import Refusal, too_large


@cache
def heif_supported() -> bool:
    """Whether HEIC (iPhone photos) decodes: only with libheif's Pillow plugin, registered on
    first use (Pillow and the plugin are imported when an image is first inspected)."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:  # pragma: no cover - the plugin is a dependency; tolerated when absent
        return False
    register_heif_opener()
    return True


THUMBNAIL_BOX = (320, 320)
THUMBNAIL_MAX_PIXELS = 50_000_000  # larger images are accepted without a preview
SIGNATURE_BYTES = 8192

# The Pillow decoder each image type may be opened with (no other decoder is tried).
PILLOW_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/heic": "HEIF",
}
_ALIASES = {
    "image/apng": "image/png",
    "image/heif": "image/heic",
    "application/x-rtf": "application/rtf",
}
_OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_ODF = {
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
}
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")


@dataclass(frozen=True)
class Inspection:
    content_type: str | None
    refusal: Refusal | None = None
    thumbnail: bytes | None = None
    thumbnail_type: str | None = None


def detect_content_type(data: bytes) -> str | None:
    """The media type the bytes show, or None when nothing recognises them."""
    if not data:
        return None
    import filetype  # on first use: only uploads and attachments inspect content

    kind = filetype.guess(data[:SIGNATURE_BYTES])
    mime = str(kind.mime) if kind is not None else None
    if mime is not None and (
        mime == "application/zip" or mime in _ODF or mime.startswith("application/vnd.openxml")
    ):
        # Decide from the archive's members, not from which member happens to come first.
        return _office_type(data) or mime
    if mime is not None:
        return _ALIASES.get(mime, mime)
    return "text/plain" if _is_text(data) else None


def _office_type(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if "mimetype" in names:
                declared = archive.read("mimetype").decode("ascii", "replace").strip()
                if declared in _ODF:
                    return declared
            if "[Content_Types].xml" in names:
                for prefix, mime in _OOXML.items():
                    if any(name.startswith(prefix) for name in names):
                        return mime
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        return None
    return None


def _is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _TEXT_CONTROL.search(text) is None


def inspect(data: bytes, *, allowed: Collection[str], max_size: int) -> Inspection:
    """Check ``data`` against the allowlist and the size limit; thumbnail accepted images."""
    if not data:
        return Inspection(None, Refusal(400, "empty-attachment", "the uploaded file is empty"))
    if len(data) > max_size:
        return Inspection(None, too_large(len(data), max_size))
    detected = detect_content_type(data)
    if detected is None:
        return Inspection(
            None,
            Refusal(
                415,
                "unrecognised-attachment-type",
                "the file's type could not be recognised from its contents; accepted types: "
                + ", ".join(sorted(allowed)),
            ),
        )
    if detected not in allowed:
        return Inspection(
            detected,
            Refusal(
                415,
                "unsupported-attachment-type",
                f"the file's contents are {detected} (whatever its name or claimed type), which "
                "is not an accepted attachment type; accepted: " + ", ".join(sorted(allowed)),
            ),
        )
    decoder = PILLOW_FORMATS.get(detected)
    if decoder is None or (decoder == "HEIF" and not heif_supported()):
        return Inspection(detected)
    from PIL import Image, UnidentifiedImageError

    try:
        thumbnail, thumbnail_type = _thumbnail(data, decoder)
    except Image.DecompressionBombError:
        return Inspection(
            detected,
            Refusal(400, "image-too-large", "the image has too many pixels to be accepted"),
        )
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return Inspection(
            detected,
            Refusal(
                415,
                "invalid-image",
                f"the file starts like {detected} but is not a valid image of that type",
            ),
        )
    return Inspection(detected, thumbnail=thumbnail, thumbnail_type=thumbnail_type)


def _thumbnail(data: bytes, decoder: str) -> tuple[bytes | None, str | None]:
    """Decode the whole image (which proves it is one) and make a small preview of it."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data), formats=[decoder]) as probe:
        probe.verify()
    with Image.open(io.BytesIO(data), formats=[decoder]) as image:
        if image.width * image.height > THUMBNAIL_MAX_PIXELS:
            return None, None
        image.load()
        upright = ImageOps.exif_transpose(image)
        transparent = upright.mode in ("RGBA", "LA", "PA") or (
            upright.mode == "P" and "transparency" in upright.info
        )
        preview = upright.convert("RGBA" if transparent else "RGB")
        preview.thumbnail(THUMBNAIL_BOX)
        out = io.BytesIO()
        # Saved without the original's metadata: a photo's EXIF may hold where it was taken.
        if transparent:
            preview.save(out, format="PNG", optimize=True)
            return out.getvalue(), "image/png"
        preview.save(out, format="JPEG", quality=80, optimize=True)
        return out.getvalue(), "image/jpeg"
