"""Configuration: environment variables (``COURIER_*``) and an optional file.

Every setting can be given as an environment variable named ``COURIER_<NAME>``; the same names
(lower or upper case, without the prefix) may be written in a ``.env``-style file named by
``COURIER_CONFIG_FILE``. The environment wins over the file.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COURIER_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./courier-data"),
        description="Directory for the embedded SQLite database, uploads and generated secrets.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy async URL, e.g. postgresql+asyncpg://user@host/db. "
            "Unset: a SQLite file (WAL mode) in the data directory."
        ),
    )
    master_key: str | None = Field(
        default=None,
        description="Secret that may create organizations and their API keys over HTTP. "
        "Unset: only `courier admin` can create organizations.",
    )
    database_connect_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300.0,
        description="How long opening a database connection may take before the request "
        "fails with 503 (PostgreSQL; a server that drops packets never refuses).",
    )
    database_statement_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600.0,
        description="How long one statement may wait for the database (PostgreSQL: for its "
        "answer; SQLite: for the write lock) before the request fails with 503.",
    )
    database_pool_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300.0,
        description="How long a request may wait for a free connection of the pool "
        "(PostgreSQL) before it fails with 503.",
    )
    database_pool_size: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Connections one process keeps open to PostgreSQL (SQLAlchemy pool_size). "
        "Keep it at least request_concurrency (plus job_concurrency with the embedded worker, "
        "a lower bound: the worker's claims and heartbeats take connections too): "
        "each request in its turn holds a connection, and one beyond the pool is closed when "
        "it is returned, so a smaller pool opens and closes connections all the time under "
        "load. Every server and worker process has a pool of its own: size them so that all "
        "of them together stay below the server's max_connections.",
    )
    database_max_overflow: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="Connections one process may open beyond the pool size at busy moments "
        "(PostgreSQL; closed again when returned).",
    )
    token_secret: str | None = Field(
        default=None,
        description="Signing secret for individual access tokens. Unset: generated once and kept "
        "in the data directory (set it explicitly when several replicas serve).",
    )
    token_ttl_seconds: int = Field(
        default=3600, ge=60, le=86400 * 30, description="Lifetime of individual access tokens."
    )
    redis_url: str | None = Field(
        default=None,
        description="redis:// URL. Set: rate-limit counters are shared by all replicas.",
    )
    rate_limit: str = Field(
        default="600/minute",
        description="Request budget per API key or individual token (limits syntax, e.g. "
        "'600/minute', '20/second;600/minute').",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, description="Largest JSON request body accepted (413 above)."
    )
    log_level: str = Field(default="INFO", description="Python log level of the JSON logs.")
    run_worker: bool = Field(
        default=True,
        description="Run a job worker inside `courier serve` (the embedded default). "
        "Set false when dedicated `courier worker` processes run.",
    )
    auto_migrate: bool = Field(
        default=True, description="Apply pending database migrations when `courier serve` starts."
    )
    request_concurrency: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="API requests one server process works on at once (PostgreSQL); the "
        "others wait their turn in arrival order. A Python process is one core: more at once "
        "only adds memory, collector work and unfair waits for connections. (SQLite: 1, as "
        "every request holds its write lock.)",
    )
    job_concurrency: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Jobs run at once by the worker inside `courier serve`.",
    )
    job_claim_batch: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Most jobs a worker claims in one statement. A worker running short jobs "
        "holds up to this many (running or about to start, under its lease); one running "
        "long jobs claims only for its free slots, so it never sits on jobs another could run.",
    )
    job_lease_seconds: float = Field(
        default=60.0,
        ge=1.0,
        le=3600.0,
        description="How long a worker's claim on a running job lasts; renewed while the job "
        "runs. A job whose worker died is taken up again once its lease expires.",
    )
    job_poll_seconds: float = Field(
        default=1.0,
        ge=1.0,
        le=300.0,
        description="How often an idle worker looks for due jobs (PostgreSQL workers are also "
        "woken at once by LISTEN/NOTIFY).",
    )
    job_max_attempts: int = Field(
        default=8, ge=1, le=100, description="Attempts of a job before it is marked failed."
    )
    job_backoff_base_seconds: float = Field(
        default=2.0,
        gt=0,
        le=3600.0,
        description="Retry backoff: attempt n waits a random time up to base * 2**n seconds.",
    )
    job_backoff_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest wait between two attempts of a job."
    )
    job_shutdown_grace_seconds: float = Field(
        default=25.0,
        ge=0,
        description="On SIGTERM, how long running jobs may take to finish before they are "
        "interrupted and handed back to the queue.",
    )
    job_retention_days: float = Field(
        default=7.0,
        gt=0,
        description="Succeeded and cancelled jobs are deleted this long after they finished "
        "(failed jobs are kept).",
    )
    job_modules: str = Field(
        default="",
        description="Comma-separated extra Python modules a worker imports at start to register "
        "job handlers (plugins, tests), besides every courier.domains.*.jobs module.",
    )
    replicator_stale_seconds: float | None = Field(
        default=None,
        gt=0,
        description="A worker whose last poll is older than this shows as stale. Unset: "
        "3 poll intervals plus the job lease.",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs that resolve to private, loopback or link-local "
        "addresses, and plain http (for tests and closed networks only).",
    )
    webhook_retry_base_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600.0,
        description="Webhook retry backoff: after failed attempt n the next one waits "
        "base * 2**(n-1) seconds (capped at 4 hours), plus up to half that again as jitter.",
    )
    webhook_retry_window_seconds: float = Field(
        default=86400.0,
        gt=0,
        description="How long after an event its failed webhook deliveries are retried.",
    )
    event_stream_heartbeat_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300.0,
        description="Idle time after which GET /v1/events/ sends a keep-alive comment.",
    )

    # --- web console (courier.console; docs/CONSOLE.md) ---
    console_idle_timeout_seconds: int = Field(
        default=600,
        ge=60,
        le=43200,
        description="A console session without activity for this long is locked (signed out "
        "server-side); the absolute lifetime is 12 hours.",
    )

    # --- providers (courier.providers.<kind>; docs/PROVIDERS.md) ---
    sms_provider: str = Field(
        default="sandbox", description="Adapter of the sms kind: 'sandbox' (default)."
    )
    email_provider: str = Field(
        default="sandbox", description="Adapter of the email kind: 'sandbox' (default) or 'smtp'."
    )
    push_provider: str = Field(
        default="sandbox",
        description="Adapter of the push kind: 'sandbox' (default); 'vendors' (each platform "
        "to its service: APNs, FCM, Web Push); or one platform only: 'apns', 'fcm', 'webpush'.",
    )
    voice_provider: str = Field(
        default="sandbox",
        description="Adapter of the voice kind: 'sandbox' (default) or 'twilio' (docs/VOICE.md).",
    )
    video_provider: str = Field(
        default="sandbox",
        description="Adapter of the video kind: 'sandbox' (default), 'twilio' (Twilio Video) or "
        "'janus' (a self-hosted Janus WebRTC server; docs/VIDEO_ENGINES.md).",
    )
    speech_provider: str = Field(
        default="sandbox", description="Adapter of the speech kind: 'sandbox' (default)."
    )
    alexa_provider: str = Field(
        default="sandbox",
        description="Adapter of the alexa kind: 'sandbox' (default) or 'amazon' (Amazon's "
        "Reminders, Proactive Events and Skill Messaging APIs; docs/ALEXA.md).",
    )
    alexa_client_id: str | None = Field(
        default=None,
        description="The skill's Alexa Client Id (developer console, Permissions): Login with "
        "Amazon client credentials of the amazon adapter.",
    )
    alexa_client_secret: str | None = Field(
        default=None, description="The skill's Alexa Client Secret (with alexa_client_id)."
    )
    alexa_lwa_url: str = Field(
        default="https://api.amazon.com/auth/o2/token",
        description="Login with Amazon's token endpoint (client credentials grant).",
    )
    alexa_api_url: str = Field(
        default="https://api.amazonalexa.com",
        description="Alexa API host of the skill's region: https://api.amazonalexa.com (North "
        "America), https://api.eu.amazonalexa.com (Europe), https://api.fe.amazonalexa.com "
        "(Far East). Reminder calls go to the apiEndpoint a user's requests name, when it is "
        "one of Amazon's hosts or this one.",
    )
    alexa_events_stage: Literal["live", "development"] = Field(
        default="live",
        description="Stage proactive events are posted to: 'live' (/v1/proactiveEvents/) or "
        "'development' (/v1/proactiveEvents/stages/development, for a skill in testing).",
    )
    alexa_trusted_roots: str | None = Field(
        default=None,
        description="PEM bundle of the roots an Alexa skill request's certificate chain must "
        "end in (docs/ALEXA.md). Unset: certifi's public roots, which include Amazon's.",
    )
    alexa_skill_ids: str = Field(
        default="",
        description="Comma-separated Alexa skill ids (amzn1.ask.skill....) whose requests "
        "POST /v1/ask-entries/ answers; empty: any skill's.",
    )
    alexa_locale: str = Field(
        default="en-US", description="Locale of the reminders Courier keeps on Alexa devices."
    )
    sandbox_secret: str | None = Field(
        default=None,
        description="Key with which the sandbox providers sign their webhooks (HMAC-SHA256). "
        "Unset: derived from the token secret.",
    )
    sandbox_delay_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60.0,
        description="Time a sandbox provider takes between two steps of a delivery "
        "(queued, sent, delivered), like a carrier; 0 in tests.",
    )
    delivery_grace_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="A delivery whose outcome is unknown (the provider may have taken it) and "
        "that no callback or lookup settles is marked failed, 'outcome unknown', after this.",
    )

    # --- SMS (courier.providers.sms, courier.domains.texts; docs/SMS.md) ---
    twilio_account_sid: str | None = Field(
        default=None, description="Twilio account SID (COURIER_SMS_PROVIDER=twilio)."
    )
    twilio_auth_token: str | None = Field(
        default=None, description="Twilio auth token: API calls and webhook signatures."
    )
    twilio_api_key_sid: str | None = Field(
        default=None,
        description="Twilio API key SID (SK...) that signs access tokens: Voice tokens for "
        "browser agents (COURIER_VOICE_PROVIDER=twilio) and video tokens "
        "(COURIER_VIDEO_PROVIDER=twilio).",
    )
    twilio_api_key_secret: str | None = Field(
        default=None,
        description="The secret of COURIER_TWILIO_API_KEY_SID (the access tokens' HS256 key).",
    )
    twilio_twiml_app_sid: str | None = Field(
        default=None,
        description="TwiML app (AP...) that browser agents' outgoing calls use; optional.",
    )
    twilio_api_base_url: str | None = Field(
        default=None,
        description="Send Twilio API requests here instead of https://<product>.twilio.com "
        "(https://api.twilio.com/2010-04-01/... becomes <base>/api/2010-04-01/...).",
    )
    sms_rate_per_second: float = Field(
        default=1.0,
        gt=0,
        le=1000,
        description="Default texts per second sent from one number (Twilio long code: 1).",
    )

    # --- video engines (courier.providers.video; docs/VIDEO_ENGINES.md) ---
    janus_url: str = Field(
        default="http://127.0.0.1:8088/janus",
        description="The Janus WebRTC server's HTTP API (COURIER_VIDEO_PROVIDER=janus).",
    )
    janus_client_url: str | None = Field(
        default=None,
        description="Where the apps reach Janus (its public HTTPS or WebSocket API): given to "
        "them with their credentials (Grant.extra['server']).",
    )
    janus_api_secret: str | None = Field(
        default=None, description="Janus' api_secret (janus.jcfg), if it sets one."
    )
    janus_admin_key: str | None = Field(
        default=None,
        description="The VideoRoom plugin's admin_key (janus.plugin.videoroom.jcfg), if it sets "
        "one: needed to create rooms.",
    )
    janus_events_secret: str | None = Field(
        default=None,
        description="The password Janus' HTTP event handler (sampleevh backend_pwd, user "
        "'janus') sends with the events it posts to /providers/video/janus; without it Janus' "
        "events are refused.",
    )
    janus_room_key: str | None = Field(
        default=None,
        description="Derives each Janus room's secret and pin and the participants' tokens "
        "(HMAC); default: derived from the token secret every Courier process shares.",
    )

    # --- push (courier.providers.push; docs/PUSH.md) ---
    apns_url: str = Field(
        default="https://api.push.apple.com",
        description="APNs production gateway (HTTP/2), for credentials without test-mode.",
    )
    apns_sandbox_url: str = Field(
        default="https://api.sandbox.push.apple.com",
        description="APNs development gateway, for credentials with test-mode.",
    )
    fcm_url: str = Field(
        default="https://fcm.googleapis.com",
        description="Base of the FCM HTTP v1 API (<base>/v1/projects/<project>/messages:send).",
    )
    fcm_token_url: str = Field(
        default="https://oauth2.googleapis.com/token",
        description="OAuth 2.0 token endpoint that signs in FCM service accounts (used instead "
        "of the token_uri a service-account file names).",
    )
    push_ca_file: Path | None = Field(
        default=None,
        description="PEM file of certificate authorities trusted, besides the public ones, "
        "for APNs, FCM, its token endpoint and Web Push services (a private CA, a proxy).",
    )
    push_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120.0, description="Timeout of one request to a push service."
    )
    webpush_allow_private: bool = Field(
        default=False,
        description="Allow Web Push subscription endpoints on private, loopback or link-local "
        "addresses, and plain http (tests and closed networks only).",
    )
    webpush_vapid_subject: str | None = Field(
        default=None,
        description="VAPID 'sub' claim (mailto: or https: contact) for Web Push credentials "
        "that name none. Unset: COURIER_PUBLIC_URL when it is https.",
    )

    # --- storage of uploaded files (courier.providers.storage) ---
    storage: Literal["local", "s3"] = Field(
        default="local",
        description="Where uploaded files live: 'local' (files under <data_dir>/storage, served "
        "by Courier through signed /uploads/ links) or 's3' (any S3-compatible service; "
        "credentials from the usual AWS_* variables or the instance role).",
    )
    s3_bucket: str | None = Field(
        default=None, description="Bucket of the S3 storage (required with storage=s3)."
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible service (MinIO, Ceph, R2 ...). Unset: AWS.",
    )
    s3_region: str | None = Field(
        default=None, description="Region of the S3 bucket. Unset: boto3's default."
    )
    s3_path_style: bool = Field(
        default=False,
        description="Address the bucket in the path (https://host/bucket/key), as most "
        "self-hosted S3-compatible services need, instead of as a subdomain.",
    )
    s3_key_prefix: str = Field(
        default="",
        description="Prefix of every object key Courier writes to the bucket (e.g. 'courier/').",
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL at which clients reach Courier (https://courier.example.org), for "
        "the signed upload and download links of local storage. Unset: each request's own URL, "
        "if its Host is one of allowed_hosts (else the request is refused with 400).",
    )
    allowed_hosts: str = Field(
        default="localhost,127.0.0.1,::1",
        description="Comma-separated host names (without port) whose requests may get upload "
        "and download links, and lists absolute links, built on their own Host header when "
        "public_url is unset (other hosts: upload/download 400, list links relative); "
        "'.example.org' allows that domain and its subdomains, '*' any host (only behind a "
        "proxy that sets Host itself).",
    )
    attachment_max_bytes: int = Field(
        default=25 * 1024 * 1024,
        ge=1,
        le=100 * 1024 * 1024,
        description="Largest file accepted as an attachment (the upload is refused above it; "
        "at most 100 MiB, as a file is inspected in memory).",
    )
    attachment_allowed_types: str = Field(
        default=(
            "image/png,image/jpeg,image/gif,image/webp,image/heic,application/pdf,text/plain,"
            "application/msword,"
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document,"
            "application/vnd.ms-excel,"
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,"
            "application/vnd.ms-powerpoint,"
            "application/vnd.openxmlformats-officedocument.presentationml.presentation,"
            "application/vnd.oasis.opendocument.text,"
            "application/vnd.oasis.opendocument.spreadsheet,"
            "application/vnd.oasis.opendocument.presentation,application/rtf"
        ),
        description="Comma-separated content types accepted as attachments, as detected from "
        "the file's bytes (the type a client claims is not trusted).",
    )
    attachment_upload_ttl_seconds: int = Field(
        default=900,
        ge=10,
        le=7 * 86400,
        description="How long an attachment's upload link is valid; uploads not processed "
        "by then (and attachment_cleanup_grace_seconds more) are deleted.",
    )
    attachment_cleanup_grace_seconds: int = Field(
        default=300,
        ge=0,
        le=7 * 86400,
        description="How long after its upload link expires an attachment that was never "
        "uploaded or processed is kept (a late process-upload still succeeds); then the "
        "cleanup job deletes it with its stored objects. Holds for every kind of upload "
        "(messaging, bulk and email attachments).",
    )
    attachment_link_ttl_seconds: int = Field(
        default=300,
        ge=5,
        le=86400,
        description="Lifetime of the signed download links (url, thumbnail) of attachments.",
    )
    bulk_message_chunk_size: int = Field(
        default=200,
        ge=1,
        le=1000,
        description="Recipients of a bulk message posted per job (one transaction each).",
    )
    multicast_chunk_size: int = Field(
        default=250,
        ge=1,
        le=2000,
        description="Recipients of a multicast notified per job (one transaction each; "
        "docs/MULTICASTS.md).",
    )
    auto_responder_quiet_seconds: float = Field(
        default=4 * 3600.0,
        ge=0,
        description="An auto-responder replies at most once per channel in this many seconds.",
    )

    # --- email (courier.providers.email, courier.domains.email; docs/EMAIL.md) ---
    email_from: str = Field(
        default="Courier <courier@localhost>",
        description="From of every email (a name and address); its domain ends each Message-ID.",
    )
    email_dkim_domain: str | None = Field(
        default=None, description="DKIM d= domain. Set with the selector and key to sign emails."
    )
    email_dkim_selector: str | None = Field(default=None, description="DKIM s= selector.")
    email_dkim_key_file: Path | None = Field(
        default=None, description="PEM file of the DKIM private key (RSA)."
    )
    email_inbound_secret: str | None = Field(
        default=None,
        description="Key with which bounce reports posted to /providers/email/bounce are signed "
        "(HMAC-SHA256, header X-Courier-Signature). Unset: that endpoint refuses every report.",
    )
    email_attachment_max_count: int = Field(
        default=10, ge=0, le=100, description="Most attachments one email may carry."
    )
    email_attachment_max_total_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1,
        description="Largest total size of one email's attachments.",
    )
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server of the smtp adapter.")
    smtp_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="SMTP port. Unset: 587 with starttls, 465 with tls, 25 with none.",
    )
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="'starttls' (upgrade a plain connection; required), 'tls' (implicit TLS) "
        "or 'none' (plain text: closed networks only).",
    )
    smtp_username: str | None = Field(default=None, description="SMTP AUTH user name.")
    smtp_password: str | None = Field(default=None, description="SMTP AUTH password.")
    smtp_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the certificate authorities trusted for the SMTP server "
        "(e.g. a private CA). Unset: the system's.",
    )
    smtp_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600.0, description="Timeout of each SMTP command."
    )
    smtp_connections: int = Field(
        default=4,
        ge=1,
        le=64,
        description="SMTP connections a process keeps open and reuses for its sends.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        from pydantic_settings import DotEnvSettingsSource

        config_file = os.environ.get("COURIER_CONFIG_FILE")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file:
            if not Path(config_file).is_file():
                raise FileNotFoundError(f"COURIER_CONFIG_FILE {config_file} does not exist")
            sources.append(
                _UnprefixedDotEnv(settings_cls, env_file=config_file),
            )
            sources.append(DotEnvSettingsSource(settings_cls, env_file=config_file))
        return tuple(sources)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'courier.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def replicator_stale_after(self) -> float:
        """Seconds without a poll after which a background process counts as stale."""
        if self.replicator_stale_seconds is not None:
            return self.replicator_stale_seconds
        return 3 * self.job_poll_seconds + self.job_lease_seconds


class _UnprefixedDotEnv(PydanticBaseSettingsSource):
    """Reads ``name=value`` lines without the ``COURIER_`` prefix from the config file."""

    def __init__(self, settings_cls: type[BaseSettings], env_file: str) -> None:
        super().__init__(settings_cls)
        self._values: dict[str, str] = {}
        for raw in Path(env_file).read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.partition("=")
            self._values[key.strip().lower()] = value.strip().strip("'\"")

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._values.items() if k in self.settings_cls.model_fields}


def describe_settings() -> str:
    """Text table of every setting, for ``courier serve --help`` and the README."""
    lines = []
    for name, field in Settings.model_fields.items():
        default = field.default
        lines.append(f"  COURIER_{name.upper():<24} {field.description} (default: {default})")
    return "\n".join(lines)
