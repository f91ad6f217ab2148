"""Aggregation requests: per-individual aggregates of messaging, computed by a job."""
