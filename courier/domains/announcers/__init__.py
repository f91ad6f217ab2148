"""Announcers: organization rules "when event E happens, send template T to these people"."""
