"""crmpilot.privacy."""
