"""Courier: a self-hostable patient-communications platform."""

__version__ = "0.1.0"
