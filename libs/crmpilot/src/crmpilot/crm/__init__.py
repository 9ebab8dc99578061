"""crmpilot.crm."""
