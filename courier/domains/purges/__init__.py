"""Purge data: erase (and optionally archive) all data of an entity, e.g. an individual."""
