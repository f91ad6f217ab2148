"""Auto-responders: a care team's automatic reply to patients who write while it is away."""
