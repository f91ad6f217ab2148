"""Secure messaging: channels, subscribers with read horizons, messages, reactions."""
