"""The fan-out of bulk messages (:mod:`courier.jobs.fanout`): planned by
:mod:`.planning`, posted chunk by chunk by :mod:`.posting`.

Jobs: ``messaging-bulk-messages.plan`` (one per bulk message) and
``messaging-bulk-messages.chunk`` (one per ``COURIER_BULK_MESSAGE_CHUNK_SIZE`` recipients).
"""

from __future__ import annotations

from courier.domains.messaging_bulk.planning import plan_recipients
from courier.domains.messaging_bulk.posting import mark_posted, post_to_recipients
from courier.domains.messaging_bulk.schemas import BULK_TYPE
from courier.jobs.fanout import FanoutSpec, register_fanout

BULK_MESSAGES = register_fanout(
    FanoutSpec(
        BULK_TYPE,
        plan=plan_recipients,
        deliver=post_to_recipients,
        settle=mark_posted,
        chunk_size=lambda settings: settings.bulk_message_chunk_size,
    )
)
PLAN_JOB = BULK_MESSAGES.plan_kind
CHUNK_JOB = BULK_MESSAGES.chunk_kind
