"""Sniffers: record one user's (or one API key's) API requests for a while, for debugging."""
