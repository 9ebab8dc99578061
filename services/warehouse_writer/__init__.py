"""warehouse_writer service."""
