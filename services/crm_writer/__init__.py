"""crm_writer service."""
