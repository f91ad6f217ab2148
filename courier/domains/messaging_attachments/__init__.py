"""Messaging attachments: two-step uploads to storage, verified, thumbnailed, signed links."""
