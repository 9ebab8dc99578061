"""crmpilot.telemetry."""
