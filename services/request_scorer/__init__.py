"""request_scorer service."""
