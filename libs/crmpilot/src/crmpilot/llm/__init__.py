"""crmpilot.llm."""
