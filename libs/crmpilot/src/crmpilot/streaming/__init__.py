"""crmpilot.streaming."""
