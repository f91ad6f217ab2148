"""The real-time event stream, ``GET /v1/events/`` (the machinery is :mod:`courier.events`)."""
