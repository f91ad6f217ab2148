"""Alexa: the skill endpoint, reminders on patients' devices, proactive-event subscriptions."""
