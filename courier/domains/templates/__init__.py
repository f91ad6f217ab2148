"""Notification templates: per-channel Jinja2 bodies, required data, locales, sensitivity."""
