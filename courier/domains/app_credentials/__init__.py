"""Push credentials of an organization's apps: ``/v1/app-credentials/`` (docs/PUSH.md)."""
