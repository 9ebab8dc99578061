"""crm_sandbox service."""
