"""Imported by every worker (``courier.jobs.registry.CORE_JOB_MODULES``): declares every kind
of upload, which registers its ``<kind>.cleanup`` and ``<kind>.delete-files`` handlers, so a
worker claims those jobs whatever else it has imported."""

from courier.uploads.kind import load_upload_kinds

KINDS = load_upload_kinds()
