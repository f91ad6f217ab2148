"""Email providers: ``base.py`` (the Protocol), ``sandbox.py`` (the default twin), ``smtp.py``."""

from courier.providers.email import sandbox as sandbox
from courier.providers.email.base import EmailProvider, delivery_id_of, message_id_for
from courier.providers.email.kind import EMAIL

# aiosmtplib, dkimpy and dnspython are loaded only by a process that sends through SMTP.
EMAIL.adapter_in("smtp", "courier.providers.email.smtp:SmtpEmail")

__all__ = ["EMAIL", "EmailProvider", "delivery_id_of", "message_id_for"]
