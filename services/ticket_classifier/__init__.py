"""ticket_classifier service."""
