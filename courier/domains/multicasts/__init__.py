"""Multicasts: a notification template sent to many people (docs/MULTICASTS.md)."""
