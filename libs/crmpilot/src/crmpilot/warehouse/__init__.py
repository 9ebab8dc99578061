"""crmpilot.warehouse."""
