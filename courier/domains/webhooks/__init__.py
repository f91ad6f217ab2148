"""Outbound webhooks: endpoints of an organization and the log of their deliveries."""
