"""Appointments (seed 003): bookings between a host and attendees, recurring or not."""
