"""Voice conferences, dial logs and surveys (issue 14, points 5, 7 and 9)."""
