"""Bulk messages: one message from a provider to many people, each in their direct channel."""
