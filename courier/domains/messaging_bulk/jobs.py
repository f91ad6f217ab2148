"""The jobs of bulk messages: their fan-out (their attachments' jobs are the generic upload's:
``courier.uploads.jobs``).

- ``messaging-bulk-messages.plan`` / ``.chunk``: the fan-out (:mod:`.fanout`, run by
  :mod:`courier.jobs.fanout`). The plan job expands the recipients and enqueues one chunk job
  per chunk; a chunk job posts its recipients' messages and marks them in one transaction. A
  worker killed half-way commits nothing of the chunk; the job is taken up again once its lease
  expires and posts the chunk then: every recipient gets exactly one message.
"""

from __future__ import annotations

from courier.domains.messaging_bulk import fanout  # noqa: F401  (declares the fan-out's jobs)
