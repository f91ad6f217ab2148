"""Email providers: ``base.py`` (the Protocol), ``sandbox.py`` (the default twin)."""

from courier.providers.email import sandbox as sandbox
from courier.providers.email.base import EmailProvider, delivery_id_of, message_id_for
from courier.providers.email.kind import EMAIL

__all__ = ["EMAIL", "EmailProvider", "delivery_id_of", "message_id_for"]
