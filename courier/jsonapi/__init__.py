"""JSON:API machinery: documents, list queries, resource declarations and the route factory."""
