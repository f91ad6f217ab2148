"""Twilio's webhook signature (``X-Twilio-Signature``), checked with the ``twilio`` library.

The rules (twilio-python ``request_validator.py``): the full public URL, then each parameter
name followed by each of its distinct values, names and values sorted; HMAC-SHA1 (or the
algorithm ``X-Twilio-Webhooks-Signature-Settings`` names) with the auth token, base64. The
URL is tried with and without its default port. JSON bodies are covered by ``bodySHA256`` in
the URL instead. Shared by every Twilio adapter (sms, voice, video).
"""

from __future__ import annotations

from twilio.request_validator import (  # type: ignore[import-untyped]
    RequestValidator,
    get_signature_algorithm,
)

from courier.providers.common import RawRequest

SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"


class _Params(dict[str, list[str]]):
    """Repeated form parameters in the shape RequestValidator reads (``getlist``)."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def twilio_params(request: RawRequest) -> _Params:
    return _Params(request.form_dict())


def verify_twilio(auth_token: str, request: RawRequest) -> bool:
    """True when ``request`` carries a valid Twilio signature made with ``auth_token``."""
    signature = request.header(SIGNATURE_HEADER)
    if not signature or not auth_token:
        return False
    validator = RequestValidator(auth_token)
    algorithm = get_signature_algorithm(request.header(SETTINGS_HEADER))
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    params: object
    if content_type == "application/x-www-form-urlencoded":
        params = twilio_params(request)
    else:
        params = request.body.decode("utf-8", errors="replace")
    return bool(validator.validate(request.url, params, signature, algorithm))


def sign_twilio(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for a form POST of ``params`` to ``url``."""
    grouped = _Params()
    for key, value in params:
        grouped.setdefault(key, []).append(value)
    return str(RequestValidator(auth_token).compute_signature(url, grouped))
