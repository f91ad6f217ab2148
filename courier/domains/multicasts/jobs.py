"""The jobs of multicasts: their fan-out (:mod:`.fanout`, run by :mod:`courier.jobs.fanout`).

- ``multicasts.plan``: expands the filter into recipients and enqueues one chunk job per
  ``COURIER_MULTICAST_CHUNK_SIZE`` of them.
- ``multicasts.chunk``: notifies its recipients (one ``notify_many`` call) and marks them in
  one transaction. A worker killed half-way commits nothing of the chunk; the job is taken up
  again once its lease expires: every recipient gets exactly one notification.
"""

from __future__ import annotations

from courier.domains.multicasts import fanout  # noqa: F401  (declares the fan-out's jobs)
