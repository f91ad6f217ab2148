"""A server process starts without the heavy libraries it may never use (issue 17, memory):
each is imported where it is used, so a worker's memory holds what its configuration needs."""

from __future__ import annotations

from tests.support import probe as run_probe

# Each of these costs 1-100 MB of a process's memory, measured one by one at import.
HEAVY = (
    "phonenumbers.geodata",  # libphonenumber's place names (~100 MB): sandbox number regions
    "phonenumbers.carrierdata",  # its carrier names (~9 MB): the sandbox's number lookups
    "yake",  # key phrases (with networkx, ~40 MB): message analysis
    "networkx",
    "vaderSentiment",
    "numpy",  # the offline speech engine's resampling
    "PIL",  # image thumbnails
    "pywebpush",  # the Web Push adapter (with aiohttp, ~35 MB)
    "aiohttp",
    "google.auth",  # the FCM adapter (~30 MB)
    "twilio.rest",  # the Twilio SMS adapter's REST client (~16 MB)
    "icalendar",  # appointment invitations
    "boto3",  # S3 storage (COURIER_STORAGE=s3)
    "botocore",
    "aiosmtplib",  # the SMTP email adapter
    "dkim",  # DKIM signing of emails (with dnspython)
    "dns",
    "redis",  # the rate limiter's shared storage (COURIER_REDIS_URL)
    "jwt",  # individual access tokens (PyJWT, with its algorithms): on the first token
    "cryptography",  # sealed credentials, app credentials, web devices' keys (~7 MB)
    "httpx",  # outbound HTTP (webhooks, callbacks, sandboxes' signed posts): ~6 MB with
    "rich",  # the command line httpx's package loads when these are installed
    "pygments",
    "click",
    "nh3",  # sanitising an email's HTML (~1.6 MB)
    "filetype",  # the content type of an upload or attachment
    "twilio.twiml",  # TwiML answers of voice calls (with xml.etree, ~1 MB)
    "xml.etree.ElementTree",
)

PROBE = """
import json, sys
from courier.app import create_app
from courier.config import Settings
create_app(Settings())
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""

# Pydantic models built at start: their validators and serializers (~7 MB for Courier's ~650
# models and FastAPI's adapters of them) are built on first use (courier/__init__.py).
BUILT_PROBE = """
import json
import pydantic
from courier.app import create_app
from courier.config import Settings
create_app(Settings())
models, pending = [], [pydantic.BaseModel]
while pending:
    for model in pending.pop().__subclasses__():
        models.append(model)
        pending.append(model)
courier = [m for m in models if m.__module__.startswith("courier.")]
built = [m for m in courier if m.__dict__.get("__pydantic_complete__")]
print(json.dumps([len(courier), sorted(f"{m.__module__}.{m.__qualname__}" for m in built)]))
"""


def test_the_app_starts_without_heavy_optional_libraries() -> None:
    probe = PROBE.format(heavy=HEAVY)
    loaded = run_probe(probe)
    assert loaded == [], f"imported at start: {loaded}"


def test_the_app_starts_without_building_its_models_validators() -> None:
    count, built = run_probe(BUILT_PROBE)
    # Every domain's schemas and request documents are declared (the declared resources'
    # response documents wait for the OpenAPI document: courier.core.openapi).
    assert count > 400
    # The settings are read at start; every other model waits for its first use.
    assert built == ["courier.config.Settings"], f"built at start: {built}"
