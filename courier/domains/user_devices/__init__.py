"""Push devices: ``/v1/user-devices/`` (docs/PUSH.md, "Devices")."""
