"""crmpilot.tasks."""
