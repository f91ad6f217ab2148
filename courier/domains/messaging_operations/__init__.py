"""Messaging operations: asynchronous bulk changes of channels (move-group)."""
