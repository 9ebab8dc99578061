"""enricher service: runs one declared enrichment (a spec file) on the consumer runtime."""
