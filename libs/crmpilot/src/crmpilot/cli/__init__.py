"""crmpilot.cli."""
