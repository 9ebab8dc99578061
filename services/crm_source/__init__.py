"""crm_source service."""
