"""Messaging plugins: named snippets (templates, links) that expand into message text."""

from courier.domains.messaging_plugins.template import TemplateType
from courier.domains.messaging_plugins.types import LinkType, register_type

register_type(TemplateType())
register_type(LinkType())
